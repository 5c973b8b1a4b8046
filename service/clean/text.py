"""The raw-text cleaner: lines in, title and body paragraphs out, with an audit trail.

The work is split in layers that each take lines and answer ``(kept, removed)``, so a layer can
be run, tested or replaced on its own (a learned per-source layer will slot in after the rules):

1. ``split_lines``: Unicode and whitespace normalisation; every non-empty line is a paragraph.
2. ``rules_layer``: a table of patterns anchored to whole short lines (and the bullets that
   follow a story-highlights label, the headline that follows a bare "Lesen Sie auch:"), in
   English and in de/fr/es/it/pl/pt/nl where sites print the same furniture ("Lesen Sie auch",
   "Vos réactions", "Aktualisiert am 17.01.2021", "11 Kommentare", "Nächster Artikel").
3. ``infer_title``: the first line the rules kept, when it reads like a headline.
4. ``document_layer``: repeats inside this one article (title printed again, duplicated lines,
   a header blob glued in front of the lede whose content is printed again below). It needs the
   title, which is why it runs after the rules have cleared the chrome above the headline.
5. ``features.features_layer`` (raw text only): jusText-style line features and context for
   the lines no pattern names; what the rules removed is context for it, and a line removed
   as what pages print after their article (comments, related links, share buttons, tags,
   the author's box, links to the next article) can mark where the article ends.
6. ``top_label_layer``: short lowercase category labels above everything else.

Layers 5 and 6 run again over their own output until they remove nothing, so that cleaning
the published text a second time changes nothing.

Every pattern matches a *whole* line and only short lines are considered, so a body sentence
that merely contains a trigger word ("read more about it in the report") is never touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from service.clean import Cleaned, Removed
from service.clean.features import ENDS, MAY_END, detect_language, features_layer
from service.clean.learned import segment_key
from service.errors import RejectedContent

__all__ = [
    "CleanedLines",
    "clean_lines",
    "clean_paragraphs",
    "clean_text",
    "document_layer",
    "infer_title",
    "rules_layer",
    "split_lines",
    "top_label_layer",
]

# C0/C1 controls (newlines are split on before this runs, tabs become spaces first), lone
# surrogates, and invisible characters that only break matching: soft hyphen, zero-width space,
# word joiner, byte-order mark. ZWJ/ZWNJ stay: some scripts need them.
_INVISIBLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")

# A line longer than this is prose whatever it contains; no rule looks at it. It also bounds the
# work any one regex can do.
_MAX_RULE_CHARS = 400

# How sentences and unfinished clauses end; headlines, labels and bullets end otherwise.
_SENTENCE_END = (".", "!", "?", "…", ":", ";", ",", "。", "！", "？", "؟", "।")
_CLOSING_QUOTES = "\"'”’»)]"

_MAX_LABEL_WORDS = 4
_MAX_LABEL_CHARS = 40

# A headline is short and is not a sentence: it does not end in a full stop.
_MAX_TITLE_WORDS = 25
_MAX_TITLE_CHARS = 250

# The header blob is judged by how much of it is printed again elsewhere in the article,
# measured with word n-grams: long enough to be specific, short enough to survive a changed
# dateline ("Washington (CNN) ...").
_SHINGLE_WORDS = 4
_HEADER_BLOB_MIN_COVERAGE = 0.5


# --- 1. lines -------------------------------------------------------------------------------


def normalise_line(line: str) -> str:
    """One line in NFC with invisible characters dropped and whitespace runs made one space."""
    visible = _INVISIBLE.sub("", line.replace("\t", " "))
    # NFC before collapsing: it can turn one whitespace character into another, never into
    # a non-space, and collapsing only inserts U+0020, which composes with nothing.
    return " ".join(unicodedata.normalize("NFC", visible).split())


def split_lines(raw: str) -> list[str]:
    """Every non-empty normalised line; scraped text marks paragraphs by one or two newlines."""
    # splitlines also breaks on \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029, so no line
    # separator survives into a paragraph and joining the output with newlines round-trips.
    # A blank line between paragraphs normalises to nothing: no need to ask.
    lines = [normalise_line(line) for line in raw.splitlines() if line]
    return [line for line in lines if line]


def _words(line: str) -> list[str]:
    return line.split()


@lru_cache(maxsize=4096)
def _key(line: str) -> str:
    """Case- and punctuation-blind form of a line, for comparing copies of the same text."""
    return segment_key(line)


def _ends_sentence(line: str) -> bool:
    return line.rstrip(_CLOSING_QUOTES).endswith(_SENTENCE_END)


def _looks_like_headline(line: str) -> bool:
    return (
        len(line) <= _MAX_TITLE_CHARS
        and 1 <= len(_words(line)) <= _MAX_TITLE_WORDS
        and any(ch.isalpha() for ch in line)
        and not _ends_sentence(line)
    )


def _is_top_label(line: str) -> bool:
    """A short all-lowercase line such as a category tag ("sanctuary cities")."""
    # islower() is False for scripts without case, so Chinese or Arabic text never qualifies.
    return (
        len(_words(line)) <= _MAX_LABEL_WORDS
        and len(line) <= _MAX_LABEL_CHARS
        and line.islower()
        and not _ends_sentence(line)
    )


# --- 2. the rule table ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineRule:
    """A boilerplate line: ``pattern`` must match the whole line, which has few words.

    ``check``, when given, is asked instead of the pattern: some kinds of line (a timestamp
    in any of several languages) are easier to say as a test over words than as one regex.
    """

    reason: str
    pattern: re.Pattern[str] | None
    max_words: int = 20
    # The rule opens a block: up to this many short unpunctuated lines right after it belong
    # to it (a highlights label's bullets, the headline a "Read also:" label links to).
    takes_lines: int = 0
    check: Callable[[str], bool] | None = None

    def matches(self, line: str, word_count: int | None = None) -> bool:
        """Whether the whole of ``line`` (of ``word_count`` words, if known) is boilerplate."""
        if word_count is None:
            word_count = len(_words(line))
        if len(line) > _MAX_RULE_CHARS or word_count > self.max_words:
            return False
        if self.check is not None:
            return self.check(line)
        return self.pattern is not None and self.pattern.fullmatch(line) is not None


def _rule(
    reason: str,
    pattern: str,
    max_words: int = 20,
    *,
    takes_lines: int = 0,
    flags: re.RegexFlag = re.IGNORECASE,
    guard: Callable[[str], bool] | None = None,
    at_end: bool = False,
    check: Callable[[str], bool] | None = None,
) -> LineRule:
    """A rule matching ``pattern`` against whole lines, or asking ``check`` instead.

    ``guard`` is a cheap string test that every matching line passes: it spares most lines a
    pattern that would otherwise be tried on every long line. With ``at_end`` the pattern may
    start anywhere in the line and must end it (searched for, not matched from the start).
    """
    if guard is not None or at_end:
        check = _guarded(
            re.compile(rf"(?:{pattern})\Z" if at_end else pattern, flags), guard, at_end
        )
    compiled = None if check is not None else re.compile(pattern, flags)
    return LineRule(reason, compiled, max_words, takes_lines, check)


def _guarded(
    pattern: re.Pattern[str], guard: Callable[[str], bool] | None, at_end: bool
) -> Callable[[str], bool]:
    test = pattern.search if at_end else pattern.fullmatch
    if guard is None:
        return lambda line: test(line) is not None
    return lambda line: guard(line) and test(line) is not None


_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DAYS = (
    r"mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?"
)
_ZONES = r"gmt|utc|[ecmp][sd]?t|hkt|bst|cets?t?|ist|jst|aest|z"
_DATE_TOKEN = rf"(?:\d{{1,4}}(?:st|nd|rd|th)?|{_MONTHS}|{_DAYS}|[ap]\.?m\.?|{_ZONES}|at|on|of)\b"
_STAMP_LABEL = r"(?:last )?(?:updated|published|posted|modified|created)(?: (?:on|at))?:?"
# A line of date and time tokens only, with a month, a clock time or a numeric date among them.
# Separators are required between tokens so that a run of digits can be read only one way.
_TIMESTAMP = (
    rf"{_STAMP_LABEL}|(?:{_STAMP_LABEL}\s*)?"
    rf"(?=.*\d)(?=.*(?:\b(?:{_MONTHS})\b|\d:\d\d|\d{{4}}-\d\d-\d\d|\d/\d|\b(?:gmt|utc)\b))"
    rf"\(?{_DATE_TOKEN}(?:[\s,./:()-]+{_DATE_TOKEN})*[\s.)]*"
)

_SHARE_WORD = (
    r"(?:share(?: (?:this|on|via|to))?(?: (?:article|story|page|post|link))?|tweet|e-?mail|print"
    r"|copy link|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|flipboard|telegram"
    r"|messenger|pocket)"
)
_VIDEO_WORD = (
    r"(?:just watched|must watch|now playing|up next|replay|more videos|play video|watch now"
    r"|video ad feedback|videos?|\(\d+ videos?\))"
)
_CHROME_WORD = (
    r"(?:clock|menu|more-arrow|no|yes|mobile|close|search|home|open|toggle|navigation|nav"
    r"|main|sections?|account|profile|login|logout|chevron(?:-\w+)?|arrow(?:-\w+)?"
    r"|(?:icon-)?(?:facebook|twitter|email|share|comments?))"
)
_CREDIT_AGENCY = (
    r"(?:getty images|ap photo|associated press|reuters|afp|epa|shutterstock|istock(?:photo)?"
    r"|alamy)"
)
_NOT_A_NAME = r"(?:The|A|An|This|That|These|Those|It|Its|He|She|They|We|Our|His|Her|Their|My)\b"
_NAME = rf"(?:(?!{_NOT_A_NAME})[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){{0,3}})"


# --- other languages: de, fr, es, it, pl, pt, nl ---------------------------------------------
# Each alternation lists what a site prints as a whole line; a line that only contains one of
# these words among others is prose and no rule below looks at it.

_READ_ALSO = (
    r"(?:lesen sie (?:dazu )?(?:auch|mehr)|lies auch|mehr (?:zum thema|dazu|themen|lesen|erfahren)"
    r"|weiterlesen|auch interessant|(?:das )?könnte (?:sie|dich) (?:auch )?interessieren"
    r"|(?:ähnliche|verwandte|weitere) (?:artikel|beiträge|links|themen|nachrichten|meldungen)"
    r"|(?:die )?(?:neuesten|aktuellen|letzten) (?:meldungen|nachrichten|beiträge|artikel)"
    r"|meistgelesen|meistgeklickt|meist gelesen|top-?themen|zum thema|themenrelevante \w+"
    r"|(?:à )?lire (?:aussi|également|la suite)|voir aussi|sur le même (?:sujet|thème)"
    r"|articles? (?:similaires|liés)|les plus lus|à voir aussi|en savoir plus"
    r"|(?:mirá|mire|mira|lea|lee|vea|ver) (?:también|además|más)|leer más|seguir leyendo"
    r"|(?:le|te) puede(?:n)? interesar|noticias relacionadas|temas relacionados"
    r"|lo más (?:leído|visto)"
    r"|(?:leggi|vedi) (?:anche|altro)|potrebbe interessarti|articoli correlati|i più letti"
    r"|zobacz (?:też|także|również)|czytaj (?:też|także|więcej|również)|polecamy"
    r"|najczęściej czytane"
    r"|(?:leia|veja) (?:também|mais)|notícias relacionadas|mais lidas"
    r"|lees (?:ook|meer|verder)|gerelateerde (?:artikelen|berichten)|meer nieuws|meest gelezen"
    r"|lue (?:myös|lisää|seuraavaksi)|watch|mire|mirá|vea|siehe auch)"
)
# The labels among those that introduce a link rather than follow a teaser.
_SEE_ALSO = (
    r"(?:lesen sie (?:dazu )?auch|lies auch|auch interessant"
    r"|(?:das )?könnte (?:sie|dich) (?:auch )?interessieren|(?:mehr )?zum thema"
    r"|(?:à )?lire (?:aussi|également)|voir aussi"
    r"|(?:mirá|mire|mira|lea|lee|vea|ver) también|(?:le|te) puede(?:n)? interesar"
    r"|(?:leggi|vedi) anche|(?:zobacz|czytaj) (?:też|także|również)|(?:leia|veja) também"
    r"|lees ook|lue myös|read also|also read|see also)"
)
# A comment form's own words, asking for a comment or cancelling a reply: in the comment_form
# rules and, anywhere in a removed line, as the mark that the article has ended (_end_mark).
_COMMENT_PROMPTS = (
    r"(?:(?:schreibe|schreiben sie|hinterlasse|hinterlassen sie) (?:einen kommentar|eine antwort)"
    r"|kommentar (?:verfassen|schreiben|abschicken|abbrechen|hinzufügen|abgeben)"
    r"|antwort(?:en)? abbrechen|kommentieren sie (?:den|diesen) (?:artikel|beitrag)"
    r"|bitte geben sie ihren kommentar ein"
    r"|(?:laisser|ajouter|écrire) un commentaire|laisser une réponse|annuler (?:la )?réponse"
    r"|(?:deja|dejar|escribe) (?:un|tu) comentario|deja una respuesta"
    r"|cancelar (?:respuesta|resposta)|(?:lascia|scrivi) un commento|lascia una risposta"
    r"|annulla risposta|(?:dodaj|napisz|zostaw) komentarz|(?:deixe|deixar) (?:um|seu) comentário"
    r"|deixe uma resposta|plaats een reactie|laat een reactie achter|annuleer reactie)"
)
_COMMENT_WORDS = (
    r"(?:kommentare?|kommentieren(?: sie)?|diskutieren sie mit|ihre meinung|neueste kommentare"
    r"|antworten|(?:vos |les )?réactions?|commentaires?|réagir|comentarios?|commenti"
    r"|komentarze?|comentários?|reacties?|leserkommentare|lesermeinung(?:en)?|répondre"
    r"|responder|rispondi|odpowiedz|skomentuj|reageer|reageren"
    rf"|sorted by|sort by|sortieren nach|trier par|ordenar por|{_COMMENT_PROMPTS})"
)
_SHARE_WORDS = (
    r"(?:teilen|twittern|drucken|versenden|senden|(?:jetzt |diesen artikel |artikel |seite )teilen"
    r"|partager|imprimer|compartir(?: nota| en \w+)?|imprimir|condividi|stampa|udostępnij|drukuj"
    r"|wyślij|compartilhar|partilhar|delen|deel dit artikel|printen)"
)
_FOLLOW_US = (
    r"(?:folg(?:e|en sie) uns|suivez-nous|síguenos|seguici|obserwuj nas|siga-nos|volg ons)"
    r"(?: (?:auf|sur|en|su|na|no|op) .{1,60})?"
)
_NEWSLETTER = (
    r"(?:(?:jetzt |zum |kostenlos(?:en)? )?newsletter(?:-?anmeldung| (?:abonnieren|bestellen"
    r"|anmelden))?|(?:sign up|subscribe|register|join|get|jetzt|melden sie sich|abonnieren sie"
    r"|inscrivez-vous|abonnez-vous|suscr[ií]bete|suscribite|iscriviti|zapisz się|assine|inscreva-se"
    r"|schrijf je in|ja, ich möchte)\b.{0,60}\bnewsletter\w*\b.{0,100}"
    r"|(?:der |die |das |our |the |unser(?:en)? )?[\w-]{0,30}newsletter(?:\s*[:!]|\s+[–-]).{0,80}"
    r"|subscribe (?:now|today)\b.{0,100}|(?:jetzt )?abonnieren|s'abonner|suscribirse|abbonati"
    r"|subskrybuj|assinar|abonneren)"
)
_SKIP_LINK = (
    r"(?:skip to (?:main )?(?:content|navigation)|(?:direkt )?zum (?:haupt)?inhalt(?: springen)?"
    r"|zur navigation|aller au contenu|saltar al contenido|vai al contenuto|przejdź do treści"
    r"|ir para o conteúdo|naar de inhoud|spring naar de inhoud)"
)
_SITE_WORDS = (
    r"(?:suche|suchen|search|rechercher|buscar|cerca|szukaj|pesquisar|zoeken|login|log-?in"
    r"|anmelden|abmelden|registrieren|mein konto|my account|menü|menu|schließen|close|fermer"
    r"|cerrar|chiudi|zamknij|fechar|sluiten|impressum|datenschutz(?:erklärung|information)?"
    r"|kontakt|contact(?: us)?|über uns|about(?: us)?|mentions légales|aviso legal|contacto"
    r"|privacy(?: policy)?|terms(?: of (?:use|service))?|cookie(?:s| policy| settings)?|agb"
    r"|nutzungsbedingungen|sitemap|rss|startseite|accueil|inicio|nach oben|zurück|weiter|back"
    r"|next|previous|permalink|ingresar|iniciar sesión|se connecter|zaloguj(?: się)?|entrar"
    r"|inloggen|home|cerrar sesión|barrierefreiheit|mediadaten|jobs|karriere|newsletter"
    r"|e-?paper|(?:die )?aktuelle ausgabe|current issue|edición impresa)"
)
_COOKIE_NOTICE = (
    r"(?:cookies erleichtern|(?:diese|unsere) (?:web)?seite (?:verwendet|nutzt)"
    r"|wir (?:verwenden|nutzen) cookies|ce site utilise|nous utilisons des cookies"
    r"|este (?:sitio|site)(?: web)? (?:utiliza|usa)"
    r"|utilizamos cookies|questo sito (?:utilizza|usa)|utilizziamo (?:i )?cookie"
    r"|ta strona (?:używa|wykorzystuje)|deze (?:web)?site (?:gebruikt|maakt gebruik)"
    r"|we gebruiken cookies|by (?:using|continuing to use) this (?:web)?site)\b.{0,300}"
)
_RIGHTS = (
    r"all rights reserved|alle rechte vorbehalten|tous droits réservés"
    r"|todos los derechos reservados"
    r"|tutti i diritti riservati|wszelkie prawa zastrzeżone|todos os direitos reservados"
    r"|alle rechten voorbehouden"
)
# News agency codes as printed under an article: "aja/PAP", "(dpa)", "dpa/lnw", "AFP/Reuters".
_AGENCY = (
    r"pap|dpa|afp|ap|apa|kna|epd|sda|ats|ansa|efe|reuters|tass|anp|belga|lusa|ips|dapd|ddp|sid"
    r"|idea|kap|red|wire"
)
_APP_PROMPT = (
    r"(?:for (?:the )?latest .{0,80}?\s)?(?:download|get|install|try|jetzt|laden sie|hol dir"
    r"|télécharge[zr]?|descarg[ae]|scarica|pobierz|baixe)\b.{0,80}\bapps?\b.{0,80}"
    r"|(?:download on|get it on|available on|jetzt bei|disponible sur|disponible en)"
    r" (?:the )?(?:app store|google play).{0,40}"
)

# Section labels over lists of other stories: "Neueste Beiträge", "Latest Articles",
# "Derniers articles", "Más leídas". A label is the whole line, perhaps with a colon.
_SECTION_LABEL = (
    r"(?:(?:latest|recent|popular|trending|featured|top|more|related|similar|recommended"
    r"|neueste[n]?|letzte[n]?|aktuelle[n]?|beliebte(?:ste)?[n]?|meistgelesene[n]?|weitere"
    r"|ähnliche|verwandte|empfohlene|passende"
    r"|derniers|dernières|récents|populaires|ultime|ultimi|últimas|últimos|najnowsze|ostatnie"
    r"|popularne|powiązane|podobne|laatste|recente|populaire|gerelateerde)"
    r" (?:articles?|posts?|news|stories|comments|videos|tags|topics|artikel|beiträge|einträge"
    r"|nachrichten|meldungen|kommentare|themen|publications|nouvelles"
    r"|actualités|articoli|notizie|noticias|artículos|entradas|notas|notícias|artigos"
    r"|artykuły|wpisy|wiadomości|artikelen|berichten|nieuws)"
    r"|(?:articles?|entradas|artículos|notas|notícias|artigos|posts|articoli|notizie)"
    r" (?:récents|populaires|recientes|populares|relacionad[oa]s|recentes|recenti|popolari"
    r"|correlati|correlate)"
    r"|schon gelesen\??|(?:hier|jetzt) weiterlesen|en relation"
    r"|empfehlungen (?:der redaktion|für sie|aus (?:dem|der) [^.!?]{1,40})"
    r"|(?:mehr|weitere artikel|weitere beiträge) (?:von|aus|zu|über|zum thema) ?[^.!?]{1,40}"
    r"|mehr (?:von|aus)(?-i:[A-ZÄÖÜ])[^.!?]{0,40}|plus (?:par|dans) [^.!?]{1,40}"
    r"|editor['’]?s picks|don['’]t miss|you may have missed|in case you missed it"
    r"|les plus (?:lus|populaires|partagés|commentés)|más (?:leídas|leídos|vistas|vistos)"
    r"|più lett[ie]|mais (?:lidas|lidos|vistas)|najpopularniejsze|meest gelezen)"
)
# Where one article links to the one before or after it ("Vorheriger Artikel", "Next post",
# "Article suivant"); the linked headline is often glued on. The bare words ("Next",
# "Suivant") are accepted only alone.
_POST_NAV_LABEL = (
    r"(?:(?:previous|next|older|newer|prev\.?) (?:article|post|story|entry|page)s?"
    r"|(?:post|article|posts|comment) navigation"
    r"|(?:vorherig|vorig|nächst)(?:e[rsn]?)? (?:artikel|beitrag|eintrag|post)"
    r"|(?:älter|neuer)e[rsn]? (?:artikel|beiträge|einträge|posts)"
    r"|beitragsnavigation|artikel-?navigation|nachfolgebeitrag|vorgängerbeitrag"
    r"|article pr[ée]c[ée]dent|article suivant|navigation (?:des|de l['’])articles?"
    r"|(?:artículo|entrada|nota|noticia) (?:anterior|siguiente)"
    r"|(?:anterior|siguiente) (?:artículo|entrada|nota|noticia)"
    r"|(?:articolo|post) (?:precedente|successivo)|(?:precedente|successivo) (?:articolo|post)"
    r"|(?:poprzedni|następny) (?:artykuł|wpis|post)|(?:artigo|post|notícia) (?:anterior|seguinte)"
    r"|(?:próximo|anterior) (?:artigo|post)|(?:vorig|volgend)e? (?:artikel|bericht))"
)
_POST_NAV_WORD = (
    r"(?:previous|next|older posts|newer posts|vorheriger|nächster|précédent|suivant|anterior"
    r"|siguiente|precedente|successivo|poprzedni|następny|próximo|seguinte|vorige|volgende)"
)
# After a label: a separator, a glued mark or a capital letter, then the linked headline.
_LINKED_TITLE = (
    r"(?:(?:\s*[:»›>←→|•·–—-]+\s*|(?=[^\s\w])|\s*(?=(?-i:[A-ZÀ-ÖØ-Þ0-9\"“„«'‚‘])))"
    r"[^\n]{1,200})?"
)
# Comment counters in the languages above: "11 Kommentare", "Un commentaire", "kein Kommentar",
# "45 Gedanken zu „Titel“", "One thought on “Title”".
_COUNT_WORD = (
    r"(?:\d[\d.,]*k?|one|no|a|ein(?:e|en)?|kein(?:e)?|un|une|aucun|uno|una|ningún|nessun|zero"
    r"|jeden|brak|um|uma|nenhum|geen|één)"
)
_COMMENT_NOUN = (
    r"(?:comments?|kommentare?|gedanke|commentaires?|comentarios?|commenti|commento|komentarz[ey]?"
    r"|comentários?|reacties?|repl(?:y|ies)|responses?|antworten|antwort|réponses?|respuestas?"
    r"|risposte|odpowiedzi|respostas?|thoughts?|gedanken|réflexions?|leserbriefe?|meinungen)"
)
_COMMENT_COUNT = (
    rf"{_COUNT_WORD}\s*{_COMMENT_NOUN}"
    r"(?:\s+(?:on|to|for|zu|zum|zur|sur|à|a|en|sobre|su|per|do|para|em|op|bij)\s+"
    r"[\"“„«‘‚'»‹][^\"“”„«»]{1,200}[\"“”«»’'‹›])?\s*[:.↓]?"
)
# What blogs print under a story: "Like this:", "Gefällt mir Wird geladen …", "Teilen mit:".
_LIKE_PROMPT = (
    r"(?:like this|gefällt mir|j['’]aime(?: ceci| ça)?|me gusta(?: esto)?|mi piace(?: questo)?"
    r"|polub to|curtir isso|vind ik leuk|liken?|lubię to|curtir)\s*:?"
    r"(?:\s*(?:loading|wird geladen|lade|chargement|cargando|caricamento|wczytywanie|carregando"
    r"|laden)\s*(?:\.{3}|…)?)?"
    r"|(?:teilen|teile|teilen sie|share)(?: (?:dies|this|das))?(?: mit| with)?\s*:"
    r"|(?:diesen |den )?(?:artikel|beitrag) (?:weiter)?empfehlen\s*:?|(?:jetzt )?weiterempfehlen"
    r"|sharing is caring\W*|(?:share|partager|partagez|comparte|condividi|udostępnij|compartilhe"
    r"|deel) (?:this|cet|cette|este|esta|questo|questa|ten|este|esta|dit) (?:article|story|post"
    r"|page|article|nota|noticia|artículo|articolo|artykuł|artigo|notícia|artikel|bericht)\W*"
)
# The author's box under a story and links to more of the author's work.
_AUTHOR_BOX = (
    r"(?:about the author|über (?:den autor|die autorin|die autoren|den verfasser)|zum autor"
    r"|zur autorin|à propos de l['’]auteur|sobre (?:el|la) autora?|sull['’]autore"
    r"|informazioni sull['’]autore|o autorze|sobre o autor|over de auteur)\s*:?"
    r"|(?:view|see|show) all (?:posts|articles|stories) by [^.!?]{1,40}"
    r"|(?:more|all) (?:posts|articles|stories) (?:by|from) [^.!?]{1,40}"
    r"|(?:zeige )?(?:alle )?(?:beiträge|artikel) von [^.!?]{1,40}(?: anzeigen)?\s*[»›→]?"
    r"|voir tous les articles de [^.!?]{1,40}|read the latest from [^.!?]{1,40}"
)
# Calls to action that are not sentences: "Buch bestellen", "Buy now", "Bewerten Sie dieses
# Produkt", "Du willst nichts mehr verpassen?".
_CALL_TO_ACTION = (
    r"(?:jetzt |hier |[\w-]+ )?(?:bestellen|kaufen)|(?:buy|order|shop|book) now"
    r"|(?:in den warenkorb|add to (?:cart|basket)|zum (?:shop|angebot))"
    r"|(?:bewerten sie|bewerte|rate) (?:diesen|dieses|diese|den|das|die|this|unseren|unser)"
    r" (?:artikel|beitrag|produkt|rezept|article|post|product|recipe)"
    r"|(?:artikel|beitrag|produkt) bewerten|was this (?:article|post|page) helpful\?"
    r"|(?:war|ist) (?:dieser|der|dieses|das) (?:artikel|beitrag) hilfreich\?"
    r"|(?:du willst|willst du|sie wollen|wollen sie) nichts (?:mehr )?verpassen\?"
    r"|(?:never|don['’]t) miss (?:a|an|another) (?:story|article|post|thing)\W*"
    r"|nichts (?:mehr )?verpassen\W*"
)
# Loading more, going back, printing: the furniture around a list or an article.
_MORE_OR_BACK = (
    r"(?:mehr|weitere) (?:laden|anzeigen)|charger plus(?: d['’]articles| de [^.!?]{1,40})?"
    r"|voir plus|cargar más|carica altro|mostra altro|pokaż więcej|załaduj więcej|czytaj dalej"
    r"|carregar mais|ver mais|leia mais|meer laden|toon meer|lire la suite"
    r"|(?:read|see|view) more (?:in|from|on|about) [^.!?]{1,40}"
    r"|zurück (?:zur|zum) (?:übersicht|startseite|inhaltsverzeichnis|artikel|seitenanfang)"
    r"|zum (?:nachrichtenüberblick|seitenanfang)|back to (?:overview|the list|all \w+|articles)"
    r"|retour (?:à la liste|aux articles|en haut)|druckversion|version imprimable"
    r"|(?:print|printer[- ]friendly) version"
)

# A caption that ends with its picture's credit: "... (Foto: X)", "... (Symbolbild)".
_CAPTION_END = (
    r"\((?:symbolbild|archivbild|archivfoto|file photo|(?:fotos?|bild(?:er)?|photos?|images?"
    r"|credits?|imagen|fotografía|illustration|grafik|screenshot)\s*:[^()]{1,80})\)\.?"
)
# The licence a page is published under, and the disclosure of paid links.
_LICENCE = (
    r"(?=.*\b(?:licen[cs]e[ds]?|lizenz\w*|licencia|licenza|licencj\w*|licença|licentie"
    r"|namensnennung|attribution)\b)[^\n]{0,200}?"
    r"\b(?:creative commons|cc[- ]by(?:[- ](?:sa|nc|nd))*)\b[^\n]{0,300}"
)
# A caption whose credit follows its last sentence or a copyright sign: "... kanssa. Kuva: X",
# "... am Holocaust-Mahnmal © dpa | Name".
_CREDIT_END = (
    r"[.!?]\s+(?:fotos?|photos?|bild|kuva|imagen|image|credit|foto)\s*:\s*[^.!?:\n]{1,60}"
    r"|(?<=.)\s©\s?[^.!?©\n]{1,100}"
)
# "Filed under X, Y", "Abgelegt unter X | Y": the label and a list of short items.
_FILED_IN = (
    r"(?:filed under|posted in|abgelegt unter|classé dans|publicado en|archiviato in"
    r"|arquivado em|geplaatst in)\s+[^,|!?]{1,40}(?:\s*[,|]\s*[^,|!?]{1,40})*"
)
# Offers of updates by mail: "Get regular updates on ...", "Erhalten Sie kostenlos aktuelle News".
_UPDATES_PROMPT = (
    r"(?=.*\b(?:free|kostenlos\w*|gratuit\w*|gratis|latest|regular|aktuelle\w*|neueste\w*"
    r"|daily|weekly|monthly|täglich\w*|wöchentlich\w*|monatlich\w*|inbox|postfach|e-?mail"
    r"|straight to|direkt))"
    r"(?:get|receive|erhalte|erhalten sie|recevez|recibe|ricevi|otrzymuj|receba|ontvang)\b"
    r"[^.!?\n]{0,40}\b(?:updates|news|newsletter|neuigkeiten|nachrichten|angebote|offers"
    r"|actualités|noticias|novità|nowości|novidades|nieuws)\b[^\n]{0,150}"
)
# What a blog prints under an entry: "This entry was posted in X. Bookmark the permalink."
_ENTRY_FOOTER = (
    r"(?:this entry was posted|dieser eintrag wurde (?:veröffentlicht|geschrieben)"
    r"|cette entrée a été publiée|esta entrada (?:fue publicada|se publicó)"
    r"|questa voce è stata pubblicata|ten wpis został opublikowany|este artigo foi publicado"
    r"|dit bericht is geplaatst)\b[^\n]{0,250}"
    r"|[^\n]{0,200}\b(?:bookmark the permalink|lesezeichen für den permalink)\W*"
)
# The notice under a form that a site is protected by a captcha.
_CAPTCHA_NOTICE = (
    r"(?:this|diese|cette|este|questo|ta|este|deze) (?:site|seite|website|page|sitio|sito"
    r"|strona|página|pagina)\b[^\n]{0,40}\brecaptcha\b[^\n]{0,200}"
)
# Counters: "66 Likes", "1.2k views", "167 Stimmen".
_COUNTER = (
    r"\d[\d.,]*k?\s*(?:likes?|shares?|views?|aufrufe|vues|visitas|lecturas|visualizzazioni"
    r"|wyświetleń|visualizações|weergaven|votes?|stimmen|votos|voti|głosów)"
)
# A link drawn as text with an arrow: "Weitere Meldungen »", "Next Post: Title »", and the
# link back to the previous story, "← Title", "« Title".
_ARROW_LINK = r"(?!.*«)[^\n]{1,200}\s(?:»|›|→|>>|>)"
_BACK_LINK = r"(?:«|‹|←|<<|<)\s[^»\n]{1,200}"
# A disclosure names affiliate links and what they earn or how they are marked.
_DISCLOSURE = (
    r"(?=.*\baffiliate[- ]?(?:links?|commissions?|partner\w*|programm?e?)\b)"
    r"(?=.*(?:commission|provision|\bearn|verdien|handelt es sich|enthält|contains|gekennzeichnet"
    r"|kennzeichn|sogenannt|\bsog\.|\*|werb|advertis|anzeige|disclosure))[^\n]{1,400}"
)
# Tables of contents.
_CONTENTS = (
    r"(?:inhalt|inhaltsverzeichnis|table of contents|contents|sommaire|índice|indice|spis treści"
    r"|inhoud|inhoudsopgave)\s*:?"
)
# A breadcrumb that starts at the home page: "Home » News » Title", "InicioMundoTitle".
_BREADCRUMB = (
    r"(?:home|startseite|inicio|accueil|início|home page)"
    # Glued without separators, the crumbs run capital into capital ("InicioMundoUcrania");
    # one capital alone after "Home" is a name ("HomeKit", "HomePod").
    r"(?:\s*[»>/|›]\s*\S|(?-i:[A-ZÀ-ÖØ-Þ][a-zß-ÿ]+[A-ZÀ-ÖØ-Þ]))[^\n]{0,200}"
)
# A comment form's heading run into its "cancel reply" link.
_CANCEL_REPLY_END = (
    r"\b(?:antwort(?:en)? abbrechen|cancel reply|annuler (?:la )?réponse"
    r"|cancelar respuesta|annulla risposta|cancelar resposta|annuleer reactie)\W*"
)
# Sign-up prompts that do not say "newsletter": "Neue Beiträge per E-Mail erhalten",
# "Gib deine E-Mail-Adresse ein, um diesem Blog zu folgen".
_EMAIL_PROMPT = (
    r"[^.!?\n]{0,80}\b(?:per|via|by|par|por) (?:e-?mail|mail|correo(?: electrónico)?)\s*[:!]?"
    r"|(?:benachrichtige mich|informiere mich|benachrichtigen sie mich|informieren sie mich"
    r"|um neue beiträge|notify me|prévenez-moi|avertissez-moi|notificarme|avvisami"
    r"|powiadom mnie|notifique-me|stuur mij)\b[^\n]{0,40}\be-?mail\b[^\n]{0,160}"
    r"|(?:gib|geben sie|enter|entrez|saisissez|introduce|inserisci|wpisz|digite|voer)"
    r" (?:hier )?(?:deine|ihre|your|votre|tu|su|la tua|swój|seu|je) e-?mail[^\n]{0,200}"
    # "Our newsletter" speaking to the reader: "Unser Newsletter informiert Sie über ...".
    r"|(?=.*\b(?:sie|ihnen|du|dich|dir|you|vous|te|usted|ti|cię|você|u)\b)"
    r"(?:unser(?:e[nrm]?)?|our|notre|nuestro|nuestra|la nostra|il nostro|nasz|nosso|nossa|onze)"
    r"\b[^\n]{0,30}\bnewsletter\b[^\n]{0,150}"
    r"|[\w.-]{1,30}-newsletter|newsletter-[\w-]{1,30}"
)
# Shop prompts and letters-to-the-editor prompts, each a whole line.
_SHOP_PROMPT = (
    r"(?:jetzt neu!?\s*)?besuche[n]? (?:sie )?(?:unseren|unsere|den) [\w-]*shop\W*"
    r"|[^\n]{0,60}\badd (?:[\w ]{0,30} )?to (?:your )?(?:basket|cart|bag)\b[^\n]{0,80}"
    r"|(?:[^\n]{0,120}[.!?]\s+)?(?:submit|write|send) (?:us )?(?:a )?letters? to the editor\b"
    r"[^\n]{0,150}|we want to hear (?:from you|what you think)\b[^\n]{0,200}"
)


def _ends_with_paren(line: str) -> bool:
    return line.endswith((")", ")."))


def _may_end_with_credit(line: str) -> bool:
    return "©" in line or ":" in line[-80:]


def _ends_with_arrow(line: str) -> bool:
    return line.endswith(("»", "›", "→", ">")) and "«" not in line


def _starts_with_arrow(line: str) -> bool:
    return line.startswith(("«", "‹", "←", "<"))


def _names_licence(line: str) -> bool:
    return "ommons" in line or "OMMONS" in line or "CC" in line or "cc-" in line or "cc " in line


def _names_affiliate(line: str) -> bool:
    return "ffiliate" in line or "FFILIATE" in line


def _may_cancel_reply(line: str) -> bool:
    tail = line[-40:].lower()
    return "abbrechen" in tail or "cancel" in tail or "annul" in tail


def _names_mail(line: str) -> bool:
    return any(map(line.__contains__, ("mail", "Mail", "MAIL", "ewsletter", "EWSLETTER", "orreo")))


def _names_shop_or_editor(line: str) -> bool:
    words = ("hop", "HOP", "asket", "ASKET", "cart", "Cart", "CART", " bag", " Bag", "ditor")
    return "ant to hear" in line or any(map(line.__contains__, words))


def _names_entry_footer(line: str) -> bool:
    return line[:1] in "TtDdCcEeQq" or "ermalink" in line


def _names_captcha(line: str) -> bool:
    return "CAPTCHA" in line or "captcha" in line


def _starts_like(letters: str) -> Callable[[str], bool]:
    return lambda line: line[:1] in letters


def _word_set(block: str) -> frozenset[str]:
    return frozenset(block.split())


_STAMP_WORDS = _word_set(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    januar jänner februar märz mai juni juli oktober dezember mrz mär okt dez
    janvier février mars avril juin juillet août septembre octobre novembre décembre
    enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre
    diciembre gennaio febbraio aprile maggio giugno luglio settembre ottobre dicembre
    stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada
    grudnia styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik
    listopad grudzień janeiro fevereiro março maio junho julho setembro outubro novembro dezembro
    januari februari maart mei augustus
    """
)
_STAMP_DAYS = _word_set(
    """
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thurs fri sat sun
    montag dienstag mittwoch donnerstag freitag samstag sonnabend sonntag mo di mi do fr sa so
    lundi mardi mercredi jeudi vendredi samedi dimanche lunes martes miércoles jueves viernes
    sábado domingo lunedì martedì mercoledì giovedì venerdì sabato domenica poniedziałek wtorek
    środa czwartek piątek sobota niedziela segunda terça quarta quinta sexta feira
    maandag dinsdag woensdag donderdag vrijdag zaterdag zondag
    """
)
_STAMP_GLUE = _word_set(
    """
    on at of am um uhr le à a las el de del en il alle ore o godz godz. em às om h hs the
    gmt utc cet cest mez mesz est edt cst cdt pst pdt bst hkt ist jst aest et pt ct z
    a.m. p.m. am pm
    """
)
_STAMP_LABELS = re.compile(
    r"(?:last )?(?:updated|published|posted|modified|created|date|zuletzt aktualisiert"
    r"|letzte aktualisierung|aktualisiert|veröffentlicht|erstellt|geändert|stand|datum"
    r"|publié|mis à jour|modifié|actualizado|publicado|fecha|aggiornato|pubblicato|data"
    r"|opublikowano|zaktualizowano|aktualizacja|atualizado|bijgewerkt|gepubliceerd|geplaatst"
    r"|asked|answered|edited)"
    r"(?: (?:on|at|am|um|le|el|em|il|op|en|o|al|vom|du))?\s*:?\s*",
    re.IGNORECASE,
)
_STAMP_RELATIVE = re.compile(
    r"(?:vor|hace|il y a|há|temu|sinds)? ?\d{1,3} ?(?:sekunden|minuten|min\.?|stunden|std\.?"
    r"|tagen|seconds|minutes|mins?|hours?|hrs?|days?|secondes|heures|jours|segundos|minutos"
    r"|horas|días|dias|secondi|minuti|ore|giorni|minut|godzin[ay]?|dni|uur|dagen)"
    r"(?: ago| fa| geleden| temu)?",
    re.IGNORECASE,
)
_STAMP_SPLIT = re.compile(r"[\s,/|()–-]+")
_STAMP_NUMBER = re.compile(
    r"\d{1,4}(?:st|nd|rd|th|er|e|º|ª|\.)?|\d{1,2}[:.h]\d\d(?::\d\d)?h?|\d{1,2}\.\d{1,2}\.\d{2,4}"
)
_STAMP_ANCHOR = re.compile(r"\d[:h.]\d\d|\d{1,2}\.\d{1,2}\.\d{2,4}|\d{4}-\d\d-\d\d|\d/\d")


_DIGIT = re.compile(r"\d")


def _is_timestamp(line: str) -> bool:
    """A date and time with at most a label: "Aktualisiert am 17.01.2021, 14:30 Uhr"."""
    # Both kinds need a decimal digit: a relative time in its number, a date in its number
    # tokens (a "²" passes isdigit() but no token test). Most short lines have none, and
    # casefolding makes none (checked over all of Unicode).
    if _DIGIT.search(line) is None:
        return False
    folded = line.casefold().strip(" .:;")
    label = _STAMP_LABELS.match(folded)
    rest = folded[label.end() :] if label else folded
    if not rest:
        return False
    if _STAMP_RELATIVE.fullmatch(rest):
        return True
    tokens = [token.strip(".") for token in _STAMP_SPLIT.split(rest) if token.strip(".")]
    if not tokens or not any(ch.isdigit() for ch in rest):
        return False
    month = False
    for token in tokens:
        if token in _STAMP_WORDS:
            month = True
        elif not (token in _STAMP_DAYS or token in _STAMP_GLUE or _STAMP_NUMBER.fullmatch(token)):
            return False
    return month or _STAMP_ANCHOR.search(rest) is not None


# Order matters only for the reason reported when two rules match the same line.
RULES: tuple[LineRule, ...] = (
    _rule("read_more", r"(?:read|see|view|show|load) more\W*"),
    _rule(
        "read_more",
        r"(?:continue reading|read (?:the )?(?:full|whole) (?:story|article)"
        r"|click here to read more).{0,80}",
        14,
    ),
    _rule(
        "related_links",
        r"(?:more news|read also|also read|read more|see also|related|related (?:content|articles?"
        r"|stories|coverage|news|posts?|links?|topics?|reading)|recommended(?: (?:for you|stories"
        r"|reading))?|you (?:may|might) also like|most (?:popular|read)|trending(?: now)?"
        r"|more (?:stories|headlines)|top stories|further reading|more (?:from|on) [\w .'’-]{1,40})"
        r"(?:\s*[:|›»>–—-]\s*.{1,160})?",
        25,
    ),
    _rule("share_prompt", rf"{_SHARE_WORD}(?:[\s:,|/·•]+{_SHARE_WORD})*[\s:,|/·•]*"),
    _rule("share_prompt", r"(?:follow|like) us on .{1,60}", 10),
    _rule("messenger_prompt", r"chat with us (?:in|on) (?:facebook )?messenger\b.{0,160}", 30),
    _rule("video_widget", rf"{_VIDEO_WORD}(?:[\s:.|•-]+{_VIDEO_WORD})*[\s:.|•-]*"),
    # CNN glues the first bullet to the label; bullets carry no full stop, sentences do.
    _rule("story_highlights", r"story highlights:?(?: [^.!?]{1,400})?", 60, takes_lines=5),
    # A bare "Highlights" is as often a menu entry as a label, and the line after a menu entry
    # may be the headline: these labels go alone.
    _rule("story_highlights", r"(?:key points|highlights|what you need to know)\s*:?"),
    _rule(
        "comment_form",
        r"(?:leave|post|add|write|submit) (?:a|your) (?:comment|reply|response)\W*"
        r"|(?:comments?|responses?|discussion|cancel reply|reply)\W*"
        r"|join the (?:conversation|discussion)\W*"
        r"|(?:show|view|hide|load) (?:all )?comments\W*"
        r"|comments? (?:are|is) closed\W*"
        r"|your email address will not be published\..{0,80}"
        r"|required fields are marked \*?"
        r"|you must be logged in to post a comment\W*"
        r"|save my name, email,? and website in this browser.{0,80}"
        r"|(?:name|e-?mail|website|comment) ?\*",
        30,
    ),
    _rule(
        "comment_count",
        r"(?:new,\s*)?\d[\d,.]*k?\s+(?:comments?|responses?|replies)"
        r"|(?:view|show|read|see|load) (?:all )?\d[\d,.]*k?\s+comments?\W*"
        r"|comments?\s*[(\[]\d[\d,.]*k?[)\]]",
        8,
    ),
    # The furniture around a story and after it, in the languages above (patterns above); the
    # guards spare the many long lines a pattern that may start anywhere cannot match.
    _rule(
        "comment_count", _COMMENT_COUNT, 20, guard=_starts_like("0123456789OoNnAaEeÉéKkUuZzJjBbGg")
    ),
    _rule("post_navigation", rf"[«‹←<]?\s*{_POST_NAV_LABEL}{_LINKED_TITLE}", 30),
    # A bare "Next" is as often a gallery's button as the article's end: site chrome only.
    _rule("site_chrome", rf"[«‹←<]?\s*{_POST_NAV_WORD}\s*[»›→>]?", 3),
    _rule("author_box", _AUTHOR_BOX, 12),
    # A label over a list of other stories, perhaps naming where they come from:
    # "Neueste Beiträge", "Artículos relacionados en El Nuevo Herald".
    _rule(
        "related_links",
        rf"{_SECTION_LABEL}(?:\s+(?:from|on|at|in|bei|aus|von|de|del|el|la|en|sur|di|da|z|van"
        r"|op|auf)\s+[^.!?:]{1,30})?\s*[:»›→>]?",
        7,
    ),
    _rule("share_prompt", _LIKE_PROMPT, 8),
    _rule("call_to_action", _CALL_TO_ACTION, 8),
    _rule("read_more", rf"{_MORE_OR_BACK}\s*[»›→>…]?", 10),
    _rule("photo_credit", _CAPTION_END, 35, guard=_ends_with_paren, at_end=True),
    _rule("photo_credit", _CREDIT_END, 40, guard=_may_end_with_credit, at_end=True),
    _rule("counter", _COUNTER, 3),
    # A gallery's position: "Bild 3 von 10", "1 of 8 »".
    _rule(
        "site_chrome",
        r"(?:(?:bild|foto|image|photo|slide|imagen|immagine|zdjęcie|afbeelding)\s*)?\d+\s*"
        r"(?:von|of|de|di|z|van|sur)\s*\d+\s*[»›>]?",
        5,
    ),
    _rule("read_more", _ARROW_LINK, 20, guard=_ends_with_arrow),
    _rule("post_navigation", _BACK_LINK, 20, guard=_starts_with_arrow),
    _rule("copyright", _LICENCE, 40, guard=_names_licence),
    _rule("disclosure", _DISCLOSURE, 50, guard=_names_affiliate),
    _rule("site_chrome", _CONTENTS, 3),
    _rule("site_chrome", _BREADCRUMB, 30, guard=_starts_like("HhSsIiAa")),
    _rule("comment_form", _CANCEL_REPLY_END, 40, guard=_may_cancel_reply, at_end=True),
    _rule("newsletter_prompt", _EMAIL_PROMPT, 25, guard=_names_mail),
    _rule("call_to_action", _SHOP_PROMPT, 25, guard=_names_shop_or_editor),
    _rule(
        "photo_credit",
        r"(?:photo|image|picture|photograph|illustration|credit|image source|foto|bild)s?"
        r"(?: (?:by|credit|source))?\s*[:©]\s*.{1,80}"
        rf"|(?:©\s*)?{_CREDIT_AGENCY}(?:\s*(?:/|via\b).{{1,60}})?"
        rf"|.{{1,60}}\s*/\s*(?:{_CREDIT_AGENCY}|ap|afp|epa)(?: .{{0,30}})?"
        r"|\((?:photo|image|credit)s?\b.{1,80}\)",
        12,
    ),
    # Names are told from other words by their capitals, so the byline rules are case-sensitive
    # and a name never starts with a pronoun or an article ("The White House is covering ...").
    _rule(
        "byline",
        rf"(?i:by)\s+{_NAME}(?:(?:,| and| &) {_NAME})*(?:\s*[|,]\s*[^.!?]{{1,40}})?",
        10,
        flags=re.NOFLAG,
    ),
    _rule(
        "byline",
        rf"(?i:posted|written|reported|reporting|words|text|edited|editing|photos?) by {_NAME}"
        rf"(?:(?:,| and| &) {_NAME})*(?:\s*[;,|]\s*.{{1,150}})?",
        25,
        flags=re.NOFLAG,
    ),
    _rule(
        "byline",
        rf"{_NAME} (?i:is|covers) (?i:covering|a (?:[\w-]+ )?(?:reporter|writer|correspondent"
        r"|editor|journalist|contributor)\b)[^.!?]{0,80}\.?",
        15,
        flags=re.NOFLAG,
    ),
    _rule("timestamp", _TIMESTAMP, 14),
    _rule(
        "filed_under",
        r"(?:filed under|posted in|tagged(?: with)?|tags|topics|categories|category"
        r"|schlagw(?:ö|o)rte(?:r)?|stichw(?:ö|o)rte(?:r)?|themen|kategorien|kategorie"
        r"|étiquettes|mots[- ]clés|catégories?|rubriques?|etiquetas|categorías?|temas|argomenti"
        r"|categorie|tagi|categorias?|assuntos|trefwoorden|categorieën|onderwerpen)"
        r"(?:\s*:\s*.{0,150}|:?)",
    ),
    _rule("filed_under", _FILED_IN, 20, guard=_starts_like("FfPpAaCcGg")),
    _rule("filed_under", _ENTRY_FOOTER, 50, guard=_names_entry_footer),
    _rule("newsletter_prompt", _UPDATES_PROMPT, 30, guard=_starts_like("GgRrEeOo")),
    _rule("cookie_notice", _CAPTCHA_NOTICE, 40, guard=_names_captcha),
    _rule(
        "site_chrome",
        # Icon names rendered as text ("clock menu more-arrow no yes mobile"); "yes"/"no" alone
        # are words, so at least one unmistakable icon name must be there.
        r"(?=.*(?:menu|more-arrow|search|navigation|chevron|arrow))"
        rf"{_CHROME_WORD}(?:\s+{_CHROME_WORD})*",
        12,
    ),
    _rule(
        "site_chrome",
        r"advertisement|advertising|ad|sponsored(?: content)?|skip to (?:main )?content"
        r"|skip navigation|toggle navigation|(?:sign|log) (?:in|up|out)|subscribe(?: now)?"
        r"|back to top|scroll to top|print this page|accept(?: all)?(?: cookies)?"
        r"|(?:we use cookies|this (?:web)?site uses cookies).{0,300}"
        r"|sign up for (?:our|the) .{0,40}newsletter.{0,80}",
        60,
    ),
    # A "see also" label alone links to the headline on the next line.
    _rule("related_links", rf"{_SEE_ALSO}\s*[:.!?»→…]*", 6, takes_lines=1),
    _rule("related_links", rf"{_READ_ALSO}\s*[:.!?»→…]*", 6),
    _rule("related_links", rf"{_READ_ALSO}\s*[:|›»>–—-]+\s*.{{1,160}}", 25),
    _rule(
        "comment_form",
        rf"{_COMMENT_WORDS}(?:\s*[:|.]?\s*{_COMMENT_WORDS})*\s*(?:\(\d+\)|\d+)?\s*[:!?*.↓]?",
        8,
    ),
    _rule(
        "comment_form",
        r"(?:votre |ihr |tu |su |il tuo |your )?(?:nom|name|e-?mail|pseudo|nombre|nome|correo"
        r"|adresse e-?mail|e-?mail-?adresse|e-?mail address|dirección de correo|indirizzo e-?mail)"
        r"\s*[:(]?\s*(?:\*|obligatoire|required|pflichtfeld|obligatorio)\W*",
        6,
    ),
    _rule("comment_form", r"(?:qui êtes-vous|who are you|wer sind sie)\s*\?", 4),
    _rule(
        "share_prompt",
        rf"{_SHARE_WORDS}(?:[\s:,|/·•]+{_SHARE_WORD}|[\s:,|/·•]+{_SHARE_WORDS})*[\s:!,|/·•]*",
    ),
    _rule("share_prompt", _FOLLOW_US, 12),
    _rule("newsletter_prompt", _NEWSLETTER, 30),
    _rule("app_prompt", _APP_PROMPT, 30),
    _rule("site_chrome", rf"{_SKIP_LINK}\W*", 8),
    _rule("site_chrome", rf"{_SITE_WORDS}(?:\s*[|/·•]\s*{_SITE_WORDS})*\s*[:/»›>]?", 12),
    _rule("cookie_notice", _COOKIE_NOTICE, 80),
    # A copyright line starts with the sign or the word and a year or a name; "the copyright
    # dispute went to court" starts otherwise. The reservation of rights is never prose.
    _rule(
        "copyright",
        r"(?:(?:all content )?(?:©|\(c\)|copyright\b\s*(?:©|\(c\)|\d{4}))"
        r"|(?:[^.!?]{0,80}[.,]\s*)?(?:" + _RIGHTS + r")\b).{0,400}",
        80,
    ),
    _rule(
        "agency_credit",
        rf"\(?(?:[\w.-]{{1,12}}\s*[/,]\s*){{0,3}}(?:{_AGENCY})(?:\s*[/,]\s*[\w.-]{{1,12}}){{0,3}}\)?\.?",
        6,
    ),
    _rule(
        "photo_credit",
        r"(?:fotos?|bild(?:er)?|bildquelle|quelle|fot\.|zdjęcie|imagen|fotografía|crédits? photo"
        r"|photos? ?|foto ?|symbolbild)\s*[:©]\s*.{1,80}"
        r"|\((?:fotos?|bild|foto|quelle)\s*:.{1,80}\)",
        12,
    ),
    _rule("timestamp", "", 14, check=_is_timestamp),
)


# Extractors write list items as "- item"; the marker is not part of what a rule looks at.
_LIST_MARKER = re.compile(r"[-*•·▪►] ")


def _matcher(rule: LineRule) -> Callable[[str], object]:
    if rule.check is not None:
        return rule.check
    if rule.pattern is not None:
        return rule.pattern.fullmatch
    return lambda line: False


_MAX_RULE_WORDS = max(rule.max_words for rule in RULES)
# For each word count up to the largest any rule allows (and one more, for longer lines): the
# rules that allow it, in table order, with what tests a line. Most lines are too long for most
# rules, and a line is tested only against the others (as LineRule.matches would).
_RULES_BY_WORDS: tuple[tuple[tuple[LineRule, Callable[[str], object]], ...], ...] = tuple(
    tuple((rule, _matcher(rule)) for rule in RULES if count <= rule.max_words)
    for count in range(_MAX_RULE_WORDS + 2)
)


def match_rule(line: str) -> LineRule | None:
    """The first rule that matches the whole of ``line``, if any."""
    marker = _LIST_MARKER.match(line)
    target = line[marker.end() :] if marker else line
    if len(target) > _MAX_RULE_CHARS:
        return None
    return _match_target(target)


# Sites print the same furniture in every article ("Share this article", "Advertisement"), so
# the answers for the last lines seen are kept; a line is at most _MAX_RULE_CHARS characters.
@lru_cache(maxsize=2048)
def _match_target(target: str) -> LineRule | None:
    # Splitting past the last word any rule allows would only be counted and thrown away.
    count = len(target.split(None, _MAX_RULE_WORDS))
    for rule, test in _RULES_BY_WORDS[count]:
        if test(target):
            return rule
    return None


def _is_bullet(line: str) -> bool:
    """A highlight bullet: a short summary line without a closing full stop."""
    return len(_words(line)) <= _MAX_TITLE_WORDS and not _ends_sentence(line)


# --- 3. rules layer -------------------------------------------------------------------------


def rules_layer(lines: Sequence[str]) -> tuple[list[str], list[Removed]]:
    """Drop lines the pattern table recognises, with the bullets of a highlights block."""
    kept: list[str] = []
    removed: list[Removed] = []
    block: LineRule | None = None
    bullets = 0
    for line in lines:
        rule = match_rule(line)
        if rule is None and block is not None and bullets < block.takes_lines and _is_bullet(line):
            bullets += 1
            removed.append(Removed(line, "rules", block.reason))
            continue
        block, bullets = (rule, 0) if rule is not None and rule.takes_lines else (None, 0)
        if rule is None:
            kept.append(line)
        else:
            removed.append(Removed(line, "rules", rule.reason))
    return kept, removed


def top_label_layer(lines: Sequence[str]) -> tuple[list[str], list[Removed]]:
    """Drop short lowercase lines at the very top: category tags ("sanctuary cities")."""
    # It runs last and takes only the leading run, so no later removal can expose a new
    # "top" and cleaning the output again changes nothing.
    count = next((i for i, line in enumerate(lines) if not _is_top_label(line)), len(lines))
    if count == len(lines):
        # A label labels something below it; a document of nothing but short lowercase
        # lines ("x y z") is its own body.
        return list(lines), []
    removed = [Removed(line, "rules", "site_chrome") for line in lines[:count]]
    return list(lines[count:]), removed


# --- 4. title ---------------------------------------------------------------------------------


def infer_title(lines: Sequence[str]) -> tuple[str | None, list[str]]:
    """The headline and the lines left without it, or ``None`` and the lines unchanged.

    ``lines`` are what the rules layer kept, so chrome above the headline is already gone;
    category labels are skipped here and removed at the end. The title is the first other line
    when it reads like a headline and something follows it: a lone line is body, not a title.
    """
    index = next((i for i, line in enumerate(lines) if not _is_top_label(line)), len(lines))
    if index + 1 < len(lines) and _looks_like_headline(lines[index]):
        return lines[index], [*lines[:index], *lines[index + 1 :]]
    return None, list(lines)


# --- 5. in-document layer -------------------------------------------------------------------


def _shingles(words: Sequence[str]) -> Counter[tuple[str, ...]]:
    n = _SHINGLE_WORDS
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _coverage(words: Sequence[str], elsewhere: Callable[[tuple[str, ...]], bool]) -> float:
    """Share of ``words`` inside some n-gram for which ``elsewhere`` holds."""
    n = _SHINGLE_WORDS
    if len(words) < n:
        return 0.0
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if elsewhere(tuple(words[i : i + n])):
            covered[i : i + n] = [True] * n
    return sum(covered) / len(words)


_SITE_SUFFIX_SEPARATORS = ("|", "-", "–", "—", ":", "·")
_MAX_SITE_SUFFIX_WORDS = 4


@dataclass(frozen=True, slots=True)
class _Title:
    """What every line of a document is compared with, worked out once per document."""

    folded: str
    key: str
    key_words: tuple[str, ...]
    # Only a title of a few words is specific enough to be told in front of a site name.
    takes_suffix: bool

    @classmethod
    def of(cls, title: str) -> _Title:
        key = _key(title)
        return cls(title.casefold(), key, tuple(key.split()), len(_words(title)) >= 3)

    def line_key(self, line: str, folded_line: str) -> str | None:
        """The key of ``line`` if it can be or start with the title's key, else None.

        Each word of such a key is a run of letters and digits of the folded line, so it is
        in there: this substring test spares keying every line, the costly part of this layer.
        """
        if self.key and all(map(folded_line.__contains__, self.key_words)):
            return _key(line)
        return None


def _is_title_copy(folded_line: str, key: str | None, title: _Title) -> bool:
    """The title again, possibly with a site name after a separator ("Title | Site")."""
    if folded_line == title.folded or key == title.key:
        return True
    if not title.takes_suffix or not folded_line.startswith(title.folded):
        return False
    rest = folded_line[len(title.folded) :].strip()
    return rest.startswith(_SITE_SUFFIX_SEPARATORS) and len(_words(rest)) <= (
        _MAX_SITE_SUFFIX_WORDS + 1
    )


def _is_header_blob(key: str, title: _Title, printed: Counter[tuple[str, ...]]) -> bool:
    """The title glued to page chrome and to text that is printed again elsewhere.

    ``key`` is the line's; ``printed`` counts the n-grams of the whole document, this line
    included.
    """
    title_words = list(title.key_words)
    words = key.split()
    if (
        not title_words
        or len(words) <= len(title_words)
        or words[: len(title_words)] != title_words
    ):
        return False
    own = _shingles(words)

    def elsewhere(shingle: tuple[str, ...]) -> bool:
        return printed[shingle] > own[shingle]

    return _coverage(words[len(title_words) :], elsewhere) >= _HEADER_BLOB_MIN_COVERAGE


def document_layer(
    lines: Sequence[str], title: str | None, reference: Sequence[str] | None = None
) -> tuple[list[str], list[Removed]]:
    """Drop what this article repeats of itself: the title, duplicated lines, a header blob.

    ``reference`` is the whole document before any layer ran (default: ``lines``): a header
    blob also repeats lines that the rules layer has already taken out, such as highlights.

    A duplicated photo caption keeps its first copy: nothing in plain text tells a caption from
    a one-sentence paragraph ("Mayor X speaks to the press ..."), so dropping both copies would
    risk real body lines; the second copy is certainly a repeat.
    """
    folded = [line.casefold() for line in lines]
    known = _Title.of(title) if title else None
    keys: list[str | None] = [None] * len(lines)
    if known:
        keys = [known.line_key(line, f) for line, f in zip(lines, folded, strict=True)]
    # Counting the document's n-grams is the costly part; only a line that starts with the
    # title can be a header blob, so most articles never need them.
    title_key = known.key + " " if known else ""
    blobs = bool(title_key.strip()) and any(
        key is not None and key.startswith(title_key) for key in keys
    )
    printed: Counter[tuple[str, ...]] = Counter()
    if blobs:
        for line in lines if reference is None else reference:
            printed.update(_shingles(_key(line).split()))
    kept: list[str] = []
    removed: list[Removed] = []
    seen: set[str] = set()
    for line, folded_line, key in zip(lines, folded, keys, strict=True):
        reason = None
        if known and _is_title_copy(folded_line, key, known):
            reason = "repeated_title"
        elif blobs and known and key is not None and _is_header_blob(key, known, printed):
            reason = "header_blob"
        elif folded_line in seen:
            reason = "duplicate_line"
        if reason is None:
            kept.append(line)
            seen.add(folded_line)
        else:
            removed.append(Removed(line, "document", reason))
    return kept, removed


# --- 6. assembly ----------------------------------------------------------------------------


class CleanedLines(NamedTuple):
    """What the layers make of a document's lines (clean_lines)."""

    title: str | None  # the client's, or the headline inferred from the first lines
    kept: list[str]
    removed: list[Removed]  # each layer's removals in turn, each in document order
    next_title: str | None  # the headline under an inferred title that may be a tagline


def clean_lines(
    lines: Sequence[str], title: str | None, *, infer: bool, features: bool
) -> CleanedLines:
    """The layers over ``lines``, whatever they leave: clean_text and clean_paragraphs are
    this plus their checks. ``infer``: take a headline from the first lines when ``title`` is
    None; ``features``: run the features and top-label layers (raw text, not extractor output).
    """
    after_rules, removed = rules_layer(lines)
    kept = after_rules
    inferred = False
    if infer and title is None:
        # The headline moves to the title field; it is not boilerplate, so it is not reported.
        title, kept = infer_title(kept)
        inferred = title is not None
    below_title = list(kept)
    kept, repeats = document_layer(kept, title, reference=lines)
    dropped: list[Removed] = []
    if features:
        # The language of a document does not change as its boilerplate goes: detect it once.
        language = detect_language(kept)
        context, mask, ends = _features_context(lines, after_rules, removed, kept, title)
        kept, dropped = features_layer(context, mask, language, ends=ends)
    kept, labels = top_label_layer(kept)
    # The context of a line changes as its neighbours go; run the last two layers on what they
    # keep until they keep it all, so that cleaning the output again removes nothing.
    changed = features and bool(dropped or labels)
    while changed:
        kept, more = features_layer(kept, language=language)
        kept, more_labels = top_label_layer(kept)
        dropped += more
        labels += more_labels
        changed = bool(more or more_labels)
    next_title = _next_title(below_title, kept, dropped) if inferred else None
    return CleanedLines(title, kept, removed + repeats + dropped + labels, next_title)


# What the features layer drops for being short or alone, a headline can be; never a menu.
_HEADLINE_DROPS = frozenset({"short_line", "isolated_text", "outside_body"})


def _next_title(
    below: Sequence[str], kept: Sequence[str], dropped: Sequence[Removed]
) -> str | None:
    """The first line under an inferred title that reads like a headline and is either kept
    or was dropped only for being short: the headline, should the title be a site tagline."""
    allowed = set(kept) | {r.text for r in dropped if r.reason in _HEADLINE_DROPS}
    return next((line for line in below if line in allowed and _looks_like_headline(line)), None)


# What a rule names on these grounds is what a page prints where its article ends: the comment
# section, links to other stories, share buttons, tags, the newsletter box, the author's box.
# Most of these may also stand between two paragraphs ("Read also: ...", "12 comments" in a
# toolbar), so they end the article only when the story does not go on below them (MAY_END);
# below the author's box, a comment form or the heading of this article's comments comes no
# more of the story, however much it reads like prose (ENDS, see ``_end_mark``).
_ENDS_ARTICLE: dict[str, int] = {
    "comment_count": MAY_END,
    "author_box": ENDS,
    "comment_form": MAY_END,
    "post_navigation": MAY_END,
    "related_links": MAY_END,
    "share_prompt": MAY_END,
    "filed_under": MAY_END,
    "newsletter_prompt": MAY_END,
}


# Below a comment form's own words come comments and the page's furniture, never more of the
# story, however much it reads like prose.
_COMMENT_PROMPT = re.compile(
    r"\b(?:(?:leave|post|add|write|submit) (?:a|your) (?:comment|reply|response)|cancel reply"
    r"|your email address will not be published|you must be logged in to post a comment"
    rf"|{_COMMENT_PROMPTS})\b",
    re.IGNORECASE,
)


def _end_mark(removed: Removed) -> int:
    """What a line the rules removed tells of where the article ends (features.MAY_END...)."""
    mark = _ENDS_ARTICLE.get(removed.reason, 0)
    if removed.reason == "comment_form" and _COMMENT_PROMPT.search(removed.text):
        return ENDS
    if removed.reason == "comment_count" and _QUOTED_TITLE.search(removed.text):
        # "45 Gedanken zu „Titel“": the heading of the comments on this very article.
        return ENDS
    return mark


_QUOTED_TITLE = re.compile(r"\s[\"“„«‘‚'»‹][^\"“”„«»]+[\"“”«»’'‹›]\W*$")


def _features_context(
    lines: Sequence[str],
    after_rules: Sequence[str],
    by_rule: Sequence[Removed],
    kept: Sequence[str],
    title: str | None,
) -> tuple[list[str], list[bool], list[int]]:
    """The lines the features layer sees, and which of them are still kept.

    Removed lines stay in as context: a line a pattern named, or a copy of a line printed
    elsewhere on the page (a teaser repeated in two sidebars), is page furniture around its
    neighbours. Two exceptions say nothing of their neighbours and are left out: the title, and
    a line printed twice in a row (a caption rendered twice belongs where its first copy is).
    """
    by_rules = _subsequence_mask(lines, after_rules)
    still = iter(_subsequence_mask(after_rules, kept))
    marks = iter(map(_end_mark, by_rule))
    context: list[str] = []
    mask: list[bool] = []
    ends: list[int] = []
    previous = ""
    for line, passed in zip(lines, by_rules, strict=True):
        if not passed:
            context.append(line)
            mask.append(False)
            ends.append(next(marks, 0))
        elif next(still):
            context.append(line)
            mask.append(True)
            ends.append(0)
        elif line != title and line.casefold() != previous.casefold():
            context.append(line)
            mask.append(False)
            ends.append(0)
        previous = line
    return context, mask, ends


def _subsequence_mask(lines: Sequence[str], kept: Sequence[str]) -> list[bool]:
    """Which of ``lines`` are the ``kept`` ones (a subsequence of them, in order)."""
    mask = [False] * len(lines)
    j = 0
    for i, line in enumerate(lines):
        if j < len(kept) and line == kept[j]:
            mask[i] = True
            j += 1
    return mask


def clean_paragraphs(
    paragraphs: Sequence[str], title: str | None
) -> tuple[list[str], list[Removed]]:
    """Run the rules and in-document layers over body paragraphs (for extractor output)."""
    lines = [line for paragraph in paragraphs for line in split_lines(paragraph)]
    cleaned = clean_lines(lines, _normalise_title(title), infer=False, features=False)
    return cleaned.kept, cleaned.removed


def _normalise_title(title: str | None) -> str | None:
    return (normalise_line(title) or None) if title else None


def clean_text(raw: str, title: str | None = None) -> Cleaned:
    """Clean raw scraped text; raise RejectedContent when nothing publishable is left.

    ``removed`` holds each layer's removals in turn (rules, document, top labels), each layer's
    in document order.
    """
    lines = split_lines(raw)
    if not lines:
        raise RejectedContent("empty_text", "the text is empty or only whitespace", field="text")
    clean_title, paragraphs, removed, next_title = clean_lines(
        lines, _normalise_title(title), infer=True, features=True
    )
    if not paragraphs:
        raise RejectedContent(
            "empty_after_cleaning",
            "no article text left after removing boilerplate",
            field="text",
        )
    return Cleaned(
        title=clean_title,
        paragraphs=tuple(paragraphs),
        removed=tuple(removed),
        next_title=next_title,
    )
