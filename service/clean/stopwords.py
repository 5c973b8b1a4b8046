"""Small stop-word lists for the line-feature classifier (``features.py``).

Each list holds a language's most frequent function words: articles, pronouns, prepositions,
conjunctions, auxiliaries. Prose is dense in them and menus, names and headlines are not,
which is all the classifier asks of them; long lists would only blur that contrast between
languages that share spellings. Words are casefolded, and split at apostrophes the way
``features.words`` splits them ("l'homme" gives "l" and "homme").
"""

from __future__ import annotations

__all__ = ["STOPWORDS"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        """
        a about after all also an and any are as at be because been but by can could did do
        does for from had has have he her his how i if in into is it its may more most my no
        not of on one or other our out she so some than that the their them then there these
        they this those to up was we were what when which while who will with would you your
        """
    ),
    "de": _words(
        """
        aber als am an auch auf aus bei bis da das dass dem den denn der des die doch durch
        ein eine einem einen einer eines er es für gegen hat hatte haben ich ihr ihre im in
        ist ja kann man mit nach nicht noch nur ob oder sich sie sind so über um und uns
        unter vom von vor war wie wir wird wurde zu zum zur zwischen werden wenn was
        """
    ),
    "fr": _words(
        """
        a au aux avec ce ces cette d dans de des du elle en est et été il ils j l la le les
        leur lui mais me même n ne nous on ont ou par pas plus pour qu que qui s sa se ses
        son sont sur un une y été était être aussi comme tout très après avant sans
        """
    ),
    "es": _words(
        """
        a al algo como con de del desde donde el ella en entre era es esta este esto fue ha
        han hay la las le les lo los más me mi muy no nos o para pero por que se ser si sin
        sobre su sus también tiene un una uno y ya sus porque cuando están está
        """
    ),
    "it": _words(
        """
        a ai al alla alle anche che ci come con da dal dalla degli dei del della delle di e
        è gli ha hanno i il in la le lo ma nel nella non o per più può se si sono su sua suo
        tra un una uno questo questa quando anche essere stato stata molto
        """
    ),
    "pl": _words(
        """
        a aby ale bo by był była było być do dla go i ich im jak jako jednak jego jej jest
        już na nad nie o od oraz po pod przez przy się są ta tak te tego tej to tu w we z za
        ze że który która które którzy tylko można może także czy gdy jeszcze
        """
    ),
    "pt": _words(
        """
        a ao aos as com como da das de do dos e é ela ele em entre era foi há isso já mais
        mas muito na nas não no nos o os ou para pela pelo por que se sem ser seu sua são
        também tem um uma foram está quando ainda sobre
        """
    ),
    "nl": _words(
        """
        aan al als bij dan dat de den deze die dit door een en er had heeft het hij hoe
        ik in is je maar met na naar niet nog of om ook op over te tot uit van voor was wat
        we werd wij worden wordt zal ze zich zijn zo geen meer kan
        """
    ),
}
