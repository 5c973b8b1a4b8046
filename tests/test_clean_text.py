"""The raw-text cleaner against the five seed articles, trigger words in prose, and fuzzing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.clean import Cleaned
from service.clean.text import clean_paragraphs, clean_text, normalise_line, split_lines
from service.errors import RejectedContent

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _seed(prefix: str) -> Cleaned:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return clean_text(path.read_text(encoding="utf-8"))


def _removed(cleaned: Cleaned) -> set[tuple[str, str, str]]:
    return {(r.layer, r.reason, r.text) for r in cleaned.removed}


def _assert_body(cleaned: Cleaned, snippets: list[str]) -> None:
    """Each snippet starts exactly one paragraph, in this order, and nothing else is kept."""
    assert len(cleaned.paragraphs) == len(snippets), cleaned.paragraphs
    for paragraph, snippet in zip(cleaned.paragraphs, snippets, strict=True):
        assert paragraph.startswith(snippet), (paragraph, snippet)


# --- seeds ------------------------------------------------------------------------------------

TITLE_000 = "Mayors want answers on Trump admin 'sanctuary city' policies"


def test_seed_000_title_printed_three_times_and_cnn_chrome() -> None:
    cleaned = _seed("000")
    assert cleaned.title == TITLE_000
    _assert_body(
        cleaned,
        [
            "Washington (CNN) Mayors and local police chiefs have a message",
            "A bipartisan group of mayors and police chiefs met Wednesday",
            "The first few months of the administration have been marked",
            "The meeting came days after Attorney General Jeff Sessions",
            "The week before, the Department of Homeland Security",
        ],
    )
    # Reported layer by layer: the rules run first, so the title can be found under the chrome.
    reasons = [(r.layer, r.reason) for r in cleaned.removed]
    assert reasons == [
        ("rules", "story_highlights"),
        ("rules", "story_highlights"),
        ("rules", "read_more"),
        ("document", "repeated_title"),
        ("document", "header_blob"),
    ]
    assert cleaned.removed[0].text.startswith("Story highlights The first few months")
    assert cleaned.removed[1].text.startswith("Some mayors expressed frustration")
    assert cleaned.removed[2].text == "Read More"
    assert cleaned.removed[3].text == TITLE_000
    blob = cleaned.removed[4].text
    assert blob.startswith(TITLE_000 + " Updated 2111 GMT")
    assert "JUST WATCHED MUST WATCH (15 Videos)" in blob
    assert "Facebook Messenger" not in cleaned.text


def test_seed_001_more_news_link() -> None:
    cleaned = _seed("001")
    assert cleaned.title == "Trump demands documents from immigrants in 'sanctuary cities'"
    assert _removed(cleaned) == {
        (
            "rules",
            "related_links",
            "More news: Jawbone from Israeli cave oldest human fossil outside Africa",
        )
    }
    assert len(cleaned.paragraphs) == 19
    for snippet in [
        "There is no formal definition of a so-called",
        '"I\'m going to stand my ground".',
        "Mayor Bill de Blasio speaks to the press in front of Trump Tower",
        "Still, many mayors did attend.",
        "Gov. Kate Brown defended the state's sanctuary laws",
        "A federal judge has already granted final approval",
    ]:
        assert any(p.startswith(snippet) for p in cleaned.paragraphs), snippet


def test_seed_002_vox_chrome_caption_and_credit() -> None:
    cleaned = _seed("002")
    caption = (
        "Mitch Landrieu, mayor of New Orleans (pictured above), delivered the U.S. Conference of "
        "Mayor’s response to the Trump administration’s latest actions towards sanctuary cities."
    )
    assert cleaned.title == (
        "Mayors boycott Trump meeting over federal action against sanctuary cities"
    )
    assert _removed(cleaned) == {
        ("rules", "site_chrome", "clock menu more-arrow no yes mobile"),
        ("rules", "filed_under", "Filed under:"),
        ("rules", "comment_count", "New, 15 comments"),
        ("document", "duplicate_line", caption),
        ("rules", "photo_credit", "Getty Images"),
    }
    _assert_body(
        cleaned,
        [
            # The dek is body text, and the first copy of the caption is kept (see document_layer).
            "Local leaders walk out over administration move to “threaten mayors",
            caption,
            "Local politicians attending the U.S. Conference of Mayors winter meeting",
            "The DOJ had asked 23 cities, counties and states",
            "A letter was sent from the DOJ yesterday",
            "“Unfortunately, the Trump administration’s decision",
            "The latest salvo in the ongoing disagreement",
            "Local leaders argue that these policies",
            "Trump, Attorney General Jeff Sessions, and other in the administration disagree.",
            "“I continue to urge all jurisdictions under review",
            "Last year, a series of court decisions",
            "The canceled meeting was supposed to discuss",
        ],
    )


def test_seed_003_category_label_byline_and_comment_form() -> None:
    cleaned = _seed("003")
    assert cleaned.title is None
    assert _removed(cleaned) == {
        ("features", "short_line", "sanctuary cities"),
        (
            "rules",
            "related_links",
            "Read also: President Trump Heads To Davos Amid Protests In Switzerland",
        ),
        ("rules", "byline", "Yeji is covering the White House."),
        ("rules", "comment_form", "Leave a comment"),
        (
            "rules",
            "comment_form",
            "Your email address will not be published. Required fields are marked *",
        ),
    }
    assert len(cleaned.paragraphs) == 14
    assert cleaned.paragraphs[0].startswith("In response to a letter from the DOJ")
    assert cleaned.paragraphs[-1].startswith("The framework was assembled after dozens")
    assert "“We can’t have that,” Trump continued." in cleaned.text


def test_seed_004_related_content() -> None:
    cleaned = _seed("004")
    assert cleaned.title == (
        "Mayors to meet with DHS Secretary John Kelly amid ‘sanctuary city’ debate"
    )
    assert _removed(cleaned) == {("rules", "related_links", "Related Content")}
    assert len(cleaned.paragraphs) == 12
    assert cleaned.paragraphs[0].startswith("As the debate over sanctuary cities rages on")
    assert cleaned.paragraphs[-1].startswith("The head of Seattle’s police department")


@pytest.mark.parametrize("prefix", ["000", "001", "002", "003", "004"])
def test_seeds_are_idempotent(prefix: str) -> None:
    cleaned = _seed(prefix)
    again = clean_text(cleaned.text, cleaned.title)
    assert again.paragraphs == cleaned.paragraphs
    assert again.title == cleaned.title
    assert again.removed == ()


# --- trigger words inside prose -------------------------------------------------------------

PROSE = [
    "Readers will comment on the plan once the council publishes it next week.",
    "Read more about it in the report below, officials said.",
    "The mayor said she would share the letter with Facebook and Twitter followers.",
    "By Wednesday, the mayors had left the building without a statement.",
    "Photo: the council's own archive shows the building in 1950, the clerk said.",
    "Related content was removed from the city website on Tuesday, a spokesman said.",
    "Comments from residents were mostly positive, according to the survey.",
    "Updated figures from March 29, 2017 show an increase in arrests.",
    "Getty Images supplied the photographs used in the exhibition, which opens today.",
    "Story highlights were printed on the front page of the local paper that day.",
    "By Wednesday, the mayors had left.",
    "The White House is covering the costs of the trip.",
    "Posted on the city hall door, the notice drew a crowd.",
    "Video of the meeting was shared widely on Twitter.",
    # Trigger words of the multilingual rules, inside sentences.
    "The newsletter reported that the council had voted on Tuesday.",
    "Der Newsletter der Stadt berichtete am Dienstag über die Abstimmung.",
    "Copyright lawyers said the case would reach the supreme court next year.",
    "The company said its app was downloaded five million times last year.",
    "Lesen Sie die Erklärung des Bürgermeisters, sagte die Sprecherin.",
    "Les commentaires des habitants ont été transmis au conseil municipal.",
    "Mire usted, dijo el alcalde, la ciudad no tiene dinero para eso.",
    "Zobacz, jak głosowali radni, napisał dziennik w piątek rano.",
    "Updated 2111 GMT figures were released by the ministry later that night.",
    "Kontakt mit den Behörden hatte der Verein schon im März gesucht.",
    "Die Polizei teilte am 17.01.2021 mit, dass der Täter gefasst wurde.",
    "AP reporters saw the convoy leave the capital before dawn.",
    "在抗击新冠肺炎疫情的日子里，封在武汉的父母们总要万般无奈而又小心翼翼回应着孩子天真的追问。",
    # Trigger words of the rules for comment counters, article navigation, section labels,
    # calls to action, captions, licences and sign-up prompts, inside sentences.
    "Eleven comments were received by the council before the deadline, the clerk said.",
    "Kommentare aus der Bevölkerung waren überwiegend positiv, hieß es am Abend.",
    "Previous articles on this topic have shown that the mayor was right all along.",
    "Der nächste Artikel der Serie erscheint am Montag, sagte die Redaktion.",
    "Neuer Beitrag: Die Stadt zahlt mehr für die Kitas, sagte der Kämmerer am Dienstag.",
    "About the author of the report, little is known beyond her name.",
    "Like this, the plan would never work, the mayor told the council.",
    "Mehr ausländische Fachkräfte sollen kommen, sagte der Minister.",
    "Zurück zur Übersicht kam die Debatte erst am späten Abend.",
    "Themen wie Klima und Rente bestimmten den Wahlkampf in diesem Jahr.",
    "Sie sagte: „Wir werden das Buch bestellen und dann in Ruhe lesen.“",
    "The company said it would send a letter to the editor of the local paper.",
    "66 likes in one hour were a record for the page, she said.",
    "Creative Commons was founded in 2001 by Lawrence Lessig and others.",
    "The company runs an affiliate program for bloggers, the report said.",
    "Home prices rose sharply in March, the statistics agency said.",
    "HomeKit devices will support the new standard from next year, Apple said.",
    "Inhalt und Form der Reform sind umstritten, sagte die Ministerin.",
    "Die Polizei bittet Zeugen, sich per E-Mail oder telefonisch zu melden.",
    "Unser Newsletter-Team hat die Umfrage im März ausgewertet, hieß es.",
    "Readers can subscribe to new articles by email, the editors said.",
    "Antworten auf diese Fragen soll eine Kommission bis zum Sommer finden.",
    "Teilen mit der Nachbarschaft ist in dem Dorf eine alte Tradition.",
    "The photo shows the mayor in front of the town hall, her office said.",
    "Get the news out quickly, the spokesman urged the council on Monday.",
    "Watch the council meeting again on the city website, the clerk said.",
    "This entry was the first of its kind in the city register, she said.",
    "Google said its reCAPTCHA service would change next year, the paper reported.",
    "Empfehlungen der Kommission wurden am Dienstag veröffentlicht, hieß es.",
]


@pytest.mark.parametrize("sentence", PROSE)
def test_trigger_words_inside_body_sentences_stay(sentence: str) -> None:
    raw = f"A Headline About The Council\n\n{sentence}\n\nAnother body paragraph follows here."
    cleaned = clean_text(raw)
    assert cleaned.paragraphs == (sentence, "Another body paragraph follows here.")
    assert cleaned.removed == ()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Read more »", "read_more"),
        ("Continue reading", "read_more"),
        ("Share this article", "share_prompt"),
        ("Facebook Twitter Email", "share_prompt"),
        ("Chat with us in Facebook Messenger.", "messenger_prompt"),
        ("JUST WATCHED", "video_widget"),
        ("Leave a reply", "comment_form"),
        ("23 comments", "comment_count"),
        ("AP Photo/Evan Vucci", "photo_credit"),
        ("By Jane Doe and John Smith, CNN", "byline"),
        ("Published 10:30 AM ET, Wed March 29, 2017", "timestamp"),
        ("Tags: immigration, mayors", "filed_under"),
        ("Advertisement", "site_chrome"),
        ("You may also like: Ten cities that changed their policies", "related_links"),
        # Other languages and more kinds of line; each is a whole line a site prints.
        ("Lesen Sie auch", "related_links"),
        ("Das könnte Sie auch interessieren:", "related_links"),
        ("À lire aussi » Ballonnements : quel est votre profil ?", "related_links"),
        ("LE PUEDE INTERESAR: La ficha del expresidente en Nueva York", "related_links"),
        ("Zobacz także: Dla dobra instytutu zdecydowałem", "related_links"),
        ("Leia também", "related_links"),
        ("Lees ook", "related_links"),
        ("Leggi anche", "related_links"),
        ("Schreibe einen Kommentar Antworten abbrechen", "comment_form"),
        ("Vos réactions (11)", "comment_form"),
        ("Deja un comentario", "comment_form"),
        ("Votre nom : *", "comment_form"),
        ("Qui êtes-vous ?", "comment_form"),
        ("Jetzt teilen!", "share_prompt"),
        ("Compartir nota", "share_prompt"),
        ("Folge uns auf Instagram", "share_prompt"),
        ("Zum Newsletter anmelden", "newsletter_prompt"),
        ("Subscribe now to our eNATION edition for the full story.", "newsletter_prompt"),
        ("Ja, ich möchte den wöchentlichen Newsletter bekommen.", "newsletter_prompt"),
        ("Der Verivox-Newsletter: immer bestens informiert!", "newsletter_prompt"),
        (
            "For the latest stories and breaking news updates download the Nationnews apps "
            "for iOS and Android.",
            "app_prompt",
        ),
        ("Get it on Google Play", "app_prompt"),
        ("Zum Inhalt springen", "site_chrome"),
        ("Impressum | Datenschutz | Kontakt", "site_chrome"),
        ("Suche", "site_chrome"),
        (
            "Cookies erleichtern die Bereitstellung unserer Dienste. Mit der Nutzung erklären "
            "Sie sich damit einverstanden.",
            "cookie_notice",
        ),
        ("© Bundesrat | Frank Bräuer", "copyright"),
        ("Copyright 2023 Sunbeam Television Corp. All rights reserved.", "copyright"),
        ("Example Media 2024. Alle Rechte vorbehalten.", "copyright"),
        ("aja/PAP", "agency_credit"),
        ("(dpa)", "agency_credit"),
        ("Foto: Ingo Pertramer", "photo_credit"),
        ("Bildquelle: Pixabay", "photo_credit"),
        ("Aktualisiert am 17.01.2021.", "timestamp"),
        ("Veröffentlicht am 16.08.2019 um 14:30 Uhr", "timestamp"),
        ("Publié le 12 mars 2021 à 10h30", "timestamp"),
        ("miércoles, 4 de mayo de 2022", "timestamp"),
        ("Actualizado al 03/05/2022 22:46", "timestamp"),
        ("vor 5 Stunden", "timestamp"),
        ("hace 5 horas", "timestamp"),
        ("Updated 2111 GMT (0511 HKT) March 29, 2017", "timestamp"),
        # Comment counters and comment forms, in the languages above.
        ("11 Kommentare", "comment_count"),
        ("Un commentaire", "comment_count"),
        ("kein Kommentar", "comment_count"),
        ("45 Gedanken zu „Das wird man ja wohl noch sagen dürfen!“", "comment_count"),
        ("One thought on “Sunday Thoughts”", "comment_count"),
        ("Hinterlasse einen Kommentar", "comment_form"),
        ("Kommentieren Sie den Artikel Antwort abbrechen", "comment_form"),
        ("Laisser un commentaire Annuler la réponse.", "comment_form"),
        ("Antworten ↓", "comment_form"),
        (
            "Wenn Sie diesen Beitrag kommentieren möchten, füllen Sie die Felder aus! "
            "Antworten abbrechen",
            "comment_form",
        ),
        # Links to the article before or after this one, the author's box.
        ("Vorheriger Artikel", "post_navigation"),
        ("Nächster ArtikelFDP-Politiker stellen die Ampel infrage", "post_navigation"),
        ("Article suivant : Les Tunisiens rapatriés rentrent chez eux", "post_navigation"),
        ("Beitragsnavigation", "post_navigation"),
        ("← Das F-Wort – Teil 2", "post_navigation"),
        ("« Vorherige News: Verfall von Urlaub", "post_navigation"),
        ("About the author", "author_box"),
        ("Zeige alle Beiträge von Creeny »", "author_box"),
        # Section labels over lists of other stories.
        ("Neueste Beiträge", "related_links"),
        ("Latest Articles", "related_links"),
        ("Derniers articles", "related_links"),
        ("Más leídas", "related_links"),
        ("Mehr vonNike Jane", "related_links"),
        ("Plus par Chokri Gharbi", "related_links"),
        ("Schon gelesen?", "related_links"),
        # Sharing, liking, calls to action, loading more.
        ("Teilen mit:", "share_prompt"),
        ("Gefällt mir Wird geladen …", "share_prompt"),
        ("Like this:", "share_prompt"),
        ("Buch bestellen", "call_to_action"),
        ("Bewerten Sie dieses Produkt", "call_to_action"),
        ("Du willst nichts mehr verpassen?", "call_to_action"),
        ("Jetzt neu! Besuchen Sie unseren Fan-Shop!", "call_to_action"),
        ("Like recipe? Add the ingredients to your basket and we deliver.", "call_to_action"),
        (
            "We want to hear what you think about this article. Submit a letter to the editor.",
            "call_to_action",
        ),
        ("Zurück zur Übersicht", "read_more"),
        ("Charger plus d'articles", "read_more"),
        ("Weitere Branchenmeldungen »", "read_more"),
        ("66 Likes", "counter"),
        # Captions with their credit at the end, licences, disclosures.
        ("Wer die Äste auf die Wege zieht, ist unklar (Symbolbild).", "photo_credit"),
        ("Merkel und Marin sprachen in Berlin. Kuva: Alexander Becher", "photo_credit"),
        ("Bundesratsgebäude mit Schriftzug #WeRemember © Bundesrat | Dirk Deckbar", "photo_credit"),
        (
            "Dieses Werk ist lizenziert unter einer Creative Commons Namensnennung 4.0 "
            "International Lizenz.",
            "copyright",
        ),
        ("* Links mit Sternchen sind sogenannte Affiliate-Links.", "disclosure"),
        # Site chrome, tags, sign-up prompts, question-and-answer timestamps.
        ("Inhalt", "site_chrome"),
        ("Home » News » Politik", "site_chrome"),
        ("InicioMundoUcrania interrumpe el paso de gas", "site_chrome"),
        ("Schlagwörter:Frauen aus der Sportwelt", "filed_under"),
        ("Abgelegt unter Blogprojekte, Das Leben | Hinterlasse einen Kommentar", "filed_under"),
        ("Redaktions-Newsletter", "newsletter_prompt"),
        ("Unser kostenloser Newsletter informiert Sie über neue Beiträge.", "newsletter_prompt"),
        ("Gib deine E-Mail-Adresse ein, um diesem Blog zu folgen.", "newsletter_prompt"),
        ("Tipps und Schnäppchen für dein Tier per E-Mail", "newsletter_prompt"),
        ("Benachrichtige mich über neue Beiträge via E-Mail.", "newsletter_prompt"),
        ("asked Feb 6, 2014 at 20:37", "timestamp"),
        ("Empfehlungen aus dem Garten-Shop", "related_links"),
        ("Artículos relacionados en El Nuevo Herald", "related_links"),
        ("Watch: The mayor's speech in full", "related_links"),
        ("Bild 3 von 10", "site_chrome"),
        ("1 of 8 »", "site_chrome"),
        ("Votre adresse e-mail : *", "comment_form"),
        ("This entry was posted in Allgemein. Bookmark the permalink.", "filed_under"),
        (
            "This site is protected by reCAPTCHA and the Google Privacy Policy and Terms of "
            "Service apply.",
            "cookie_notice",
        ),
        ("Get regular updates on the latest tutorials, offers & news.", "newsletter_prompt"),
        ("Erhalten Sie kostenlos aktuelle Kredit-News und Informationen", "newsletter_prompt"),
    ],
)
def test_rule_table_recognises_whole_lines(line: str, reason: str) -> None:
    cleaned = clean_text(f"A Headline\n{line}\nThe body of the story is this sentence.")
    assert cleaned.paragraphs == ("The body of the story is this sentence.",)
    assert [(r.layer, r.reason, r.text) for r in cleaned.removed] == [("rules", reason, line)]


def test_a_bare_see_also_label_takes_the_headline_it_links_to() -> None:
    raw = "\n".join(
        [
            LONG_BODY[0],
            "Lesen Sie auch:",
            "Warum die Stadt die Buslinien im Norden kürzt",
            *LONG_BODY[1:],
        ]
    )
    cleaned = clean_text(raw, title="Budget passes")
    assert cleaned.paragraphs == tuple(LONG_BODY)
    assert [(r.reason, r.text) for r in cleaned.removed] == [
        ("related_links", "Lesen Sie auch:"),
        ("related_links", "Warum die Stadt die Buslinien im Norden kürzt"),
    ]
    # With its headline on the same line, the label takes nothing more.
    inline = "Lesen Sie auch: Warum die Stadt die Buslinien kürzt"
    again = clean_text("\n".join([LONG_BODY[0], inline, *LONG_BODY[1:]]), title="Budget")
    assert again.paragraphs == tuple(LONG_BODY)


def test_story_highlights_block_takes_its_bullets_only() -> None:
    raw = (
        "Story highlights\n"
        "Mayors met the secretary\n"
        "Some left without answers\n"
        "WASHINGTON (CNN) Mayors met the secretary on Wednesday.\n"
        "A short line without a stop"
    )
    cleaned = clean_text(raw, title="Mayors meet")
    assert cleaned.paragraphs == (
        "WASHINGTON (CNN) Mayors met the secretary on Wednesday.",
        "A short line without a stop",
    )
    assert [r.reason for r in cleaned.removed] == ["story_highlights"] * 3


def test_a_bare_highlights_label_does_not_swallow_the_headline() -> None:
    cleaned = clean_text("Highlights\nCouncil Passes Budget\nThe council voted on Tuesday.")
    assert cleaned.title == "Council Passes Budget"
    assert cleaned.paragraphs == ("The council voted on Tuesday.",)


# --- title ------------------------------------------------------------------------------------


def test_client_title_wins_and_its_copy_is_removed() -> None:
    cleaned = clean_text("Some Headline\n\nBody sentence one.", title="  Some  Headline ")
    assert cleaned.title == "Some Headline"
    assert cleaned.paragraphs == ("Body sentence one.",)
    assert [r.reason for r in cleaned.removed] == ["repeated_title"]


def test_title_with_site_suffix_is_a_repeat() -> None:
    cleaned = clean_text(
        "Mayors meet the secretary | Example News\n\nBody.", "Mayors meet the secretary"
    )
    assert cleaned.paragraphs == ("Body.",)
    assert [r.reason for r in cleaned.removed] == ["repeated_title"]


def test_no_title_inferred_from_a_sentence_or_a_lone_line() -> None:
    assert clean_text("The mayor spoke.\n\nThen she left.").title is None
    lone = clean_text("Just one short line")
    assert lone.title is None
    assert lone.paragraphs == ("Just one short line",)


def test_title_line_starting_a_paragraph_without_repeat_is_kept() -> None:
    # The header-blob rule needs the rest of the line printed again below; here it is not.
    raw = "Budget Vote\n\nBudget Vote delayed again as council members argue over the figures."
    cleaned = clean_text(raw)
    assert cleaned.title == "Budget Vote"
    assert cleaned.paragraphs == (
        "Budget Vote delayed again as council members argue over the figures.",
    )


# --- normalisation and rejection ------------------------------------------------------------


def test_unicode_is_normalised() -> None:
    assert normalise_line("Cafe\u0301\x00 \u200bopens\t\u00a0today\u00ad") == "Café opens today"
    assert split_lines("a\r\nb\u2028c\x85d\n\n\x0b") == ["a", "b", "c", "d"]


@pytest.mark.parametrize("raw", ["", "   ", "\n\n\t\n", "\x00\x01\u200b"])
def test_empty_input_is_rejected(raw: str) -> None:
    with pytest.raises(RejectedContent) as excinfo:
        clean_text(raw)
    assert excinfo.value.reason == "empty_text"
    assert excinfo.value.field == "text"


def test_all_boilerplate_is_rejected() -> None:
    raw = "clock menu more-arrow no yes mobile\nShare this article\nRead More\nLeave a comment"
    with pytest.raises(RejectedContent) as excinfo:
        clean_text(raw)
    assert excinfo.value.reason == "empty_after_cleaning"
    assert excinfo.value.field == "text"


def test_clean_paragraphs_runs_both_layers() -> None:
    kept, removed = clean_paragraphs(
        ["Title Here", "Body sentence.", "Body sentence.", "Read more"], "Title Here"
    )
    assert kept == ["Body sentence."]
    assert [(r.layer, r.reason) for r in removed] == [
        ("rules", "read_more"),
        ("document", "repeated_title"),
        ("document", "duplicate_line"),
    ]


# --- line features (jusText-style) ----------------------------------------------------------

LONG_BODY = [
    "The city council approved a new budget on Tuesday after a long debate about road repairs "
    "and school funding in the northern districts of the city, which have waited for years.",
    "Council members voted seven to two in favour, with the two dissenting members arguing "
    "that the plan spends too little on public transport and on the bus lines in the north.",
    "The mayor said the budget would be published in full next week and that residents could "
    "comment on the plan at three public meetings to be held in the town hall in April.",
]
NAV = ["Home", "Politics", "Sport", "Weather", "Local News Today"]


def test_short_lines_among_boilerplate_go_and_among_body_stay() -> None:
    raw = "\n".join(
        [
            *NAV,
            "Budget Passes After Long Debate",
            LONG_BODY[0],
            "A short aside.",
            *LONG_BODY[1:],
            "Most Viewed Today",
            "Trending Topics Here",
        ]
    )
    cleaned = clean_text(raw, title="Budget Passes After Long Debate")
    assert cleaned.paragraphs == (LONG_BODY[0], "A short aside.", *LONG_BODY[1:])
    features = {(r.text, r.reason) for r in cleaned.removed if r.layer == "features"}
    assert ("Politics", "menu_line") in features
    assert ("Trending Topics Here", "menu_line") in features


def test_link_lists_and_isolated_teasers_are_boilerplate() -> None:
    teaser = "Ten things you did not know about the new city budget and what they mean for you"
    raw = "\n".join(
        [*LONG_BODY, "Politics · Sport · Weather · Culture", teaser, "Cars | Homes | Jobs | Travel"]
    )
    cleaned = clean_text(raw, title="Budget passes")
    assert cleaned.paragraphs == tuple(LONG_BODY)
    reasons = {r.text: r.reason for r in cleaned.removed}
    assert reasons["Politics · Sport · Weather · Culture"] == "link_list"
    assert reasons["Cars | Homes | Jobs | Travel"] == "link_list"
    assert reasons[teaser] == "isolated_text"


def test_stop_words_of_the_document_language_are_used() -> None:
    body = [
        "Der Stadtrat hat am Dienstag nach einer langen Debatte über Straßen und Schulen einen "
        "neuen Haushalt beschlossen, auf den die Bezirke im Norden schon lange warten.",
        "Die Mitglieder stimmten mit sieben zu zwei Stimmen dafür, wobei die beiden Gegner sagten, "
        "dass der Plan zu wenig für den Nahverkehr und die Buslinien im Norden ausgebe.",
    ]
    names = "Anna Schmidt, Peter Müller, Klaus Weber, Eva Fischer, Jan Becker, Lea Wolf, Tim Koch"
    cleaned = clean_text("\n".join([*body, "Autoren", names]), title="Haushalt")
    assert cleaned.paragraphs == tuple(body)
    assert {r.text: r.reason for r in cleaned.removed}[names] == "low_stopwords"


# The rest of the page, after the article: comments, teasers, the author's box.
COMMENTS = [
    "Anna Schmidt 14.09.2022 um 21.11",
    "I have read every budget of this council for twenty years and this is the first one that "
    "takes the bus lines in the north seriously, which is long overdue for all of us living here.",
    "Peter 15.09.2022 um 08.02",
    "Thank you for the report. The meetings in April will be crowded, and the council should "
    "hold them in a bigger hall than the one in the town hall, where half of us had to stand.",
]


@pytest.mark.parametrize(
    "heading", ["2 Gedanken zu „Der Haushalt ist beschlossen“", "Schreibe einen Kommentar"]
)
def test_the_article_ends_at_its_comment_section(heading: str) -> None:
    raw = "\n".join([*LONG_BODY, heading, *COMMENTS])
    cleaned = clean_text(raw, title="Budget passes")
    assert cleaned.paragraphs == tuple(LONG_BODY)
    reasons = {r.text: r.reason for r in cleaned.removed}
    assert reasons[heading] in {"comment_count", "comment_form"}
    assert {reasons[line] for line in COMMENTS[1::2]} == {"after_article"}
    assert clean_text(cleaned.text, cleaned.title).removed == ()


def test_a_comment_counter_between_paragraphs_ends_nothing() -> None:
    # "12 comments" is as often a link in a toolbar between paragraphs as the comments' heading.
    raw = "\n".join([*LONG_BODY[:2], "12 comments", "Follow us on Facebook", LONG_BODY[2]])
    cleaned = clean_text(raw, title="Budget passes")
    assert cleaned.paragraphs == tuple(LONG_BODY)


def test_the_article_ends_at_links_to_other_stories_and_the_authors_box() -> None:
    bio = (
        "Jane Roe has covered the city council for the Herald since 2009 and before that "
        "reported on schools and the courts for newspapers in three other states of the country."
    )
    teaser = (
        "The county sheriff said on Monday that the jail would keep honouring warrants from "
        "federal agents, despite a vote of the county board against the practice last week."
    )
    raw = "\n".join([*LONG_BODY, "About the author", bio, "Neueste Beiträge", teaser])
    cleaned = clean_text(raw, title="Budget passes")
    assert cleaned.paragraphs == tuple(LONG_BODY)
    reasons = {r.text: r.reason for r in cleaned.removed}
    assert (reasons["About the author"], reasons[bio]) == ("author_box", "after_article")


def test_the_story_going_on_below_an_end_mark_keeps_it() -> None:
    # A share bar and a subheading in the middle of a story, then two paragraphs in a row.
    sub = "What comes next"
    raw = "\n".join([*LONG_BODY, "Share this article", "Advertisement", sub, *COMMENTS[1::2]])
    cleaned = clean_text(raw, title="Budget passes")
    assert not [r for r in cleaned.removed if r.reason == "after_article"]
    assert cleaned.paragraphs[-2:] == tuple(COMMENTS[1::2])


def test_an_end_mark_above_most_of_the_body_or_followed_by_more_body_ends_nothing() -> None:
    # A comment counter beside the byline: most of the body lies below it.
    top = clean_text("\n".join(["By Jane Roe", "12 comments", *LONG_BODY]), title="Budget")
    assert top.paragraphs == tuple(LONG_BODY)
    # "Read also" with its headline in the middle of the story: the story goes on below it.
    more = [
        "The budget also sets aside money for two new libraries, one in each of the northern "
        "districts, and for longer opening hours at the three pools the city runs in summer.",
        "Opposition members said they would try again next year to move money from roads to "
        "buses, and that they expected support from residents at the April meetings.",
    ]
    raw = "\n".join([*LONG_BODY, "Related: Ten things to know about the budget", *more])
    middle = clean_text(raw, title="Budget passes")
    assert middle.paragraphs == (*LONG_BODY, *more)


def test_features_abstain_without_a_body_line() -> None:
    # Nothing reads as a paragraph of prose: no evidence where the article is, so nothing goes.
    raw = "Short Note\nThe meeting is moved to Friday.\nRooms: 2 and 3\nBring the forms"
    cleaned = clean_text(raw)
    assert cleaned.paragraphs == (
        "The meeting is moved to Friday.",
        "Rooms: 2 and 3",
        "Bring the forms",
    )
    assert not [r for r in cleaned.removed if r.layer == "features"]


# --- fuzzing ----------------------------------------------------------------------------------

_LINES = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(
            [
                "Read More",
                "Story highlights",
                "sanctuary cities",
                "Getty Images",
                "A Headline",
                "Home",
                "Lesen Sie auch",
                "Aktualisiert am 17.01.2021",
                "11 Kommentare",
                "Nächster Artikel",
                "Teilen mit:",
                "Weitere Meldungen »",
                "About the author",
                "",
                *LONG_BODY,
            ]
        ),
    ),
    max_size=12,
).map("\n".join)


# Derandomized: the suite must give the same answer on every run and write nothing to disk.
_FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)
_TITLES = st.one_of(st.none(), st.text(max_size=30))


@_FUZZ
@given(st.one_of(st.text(), _LINES), _TITLES)
def test_never_raises_and_never_empties_silently(raw: str, title: str | None) -> None:
    """Any Unicode gives paragraphs or RejectedContent, never another error or an empty body."""
    try:
        cleaned = clean_text(raw, title)
    except RejectedContent as exc:
        rejected = exc
    else:
        assert cleaned.paragraphs
        assert all(p and p == p.strip() and "\n" not in p for p in cleaned.paragraphs)
        return
    # The API maps this to a 422; an empty event is never published.
    assert rejected.reason in {"empty_text", "empty_after_cleaning"}
    assert rejected.field == "text"


@_FUZZ
@given(st.one_of(st.text(), _LINES), _TITLES)
def test_cleaning_is_idempotent(raw: str, title: str | None) -> None:
    """Cleaning the published text again, with the title it got, changes and removes nothing.

    Compared: the paragraphs, the title field, and the removals of the second run (none).
    """
    try:
        cleaned = clean_text(raw, title)
    except RejectedContent:
        return
    again = clean_text(cleaned.text, cleaned.title)
    assert again.paragraphs == cleaned.paragraphs
    assert again.title == cleaned.title
    assert again.removed == ()


def test_a_lone_lowercase_line_is_body_not_a_label() -> None:
    cleaned = clean_text("x y z")
    assert cleaned.paragraphs == ("x y z",)
    assert clean_text(cleaned.text).paragraphs == cleaned.paragraphs


def test_a_hard_wrapped_article_keeps_its_body_beside_a_long_line() -> None:
    """Prose wrapped at 66 columns is judged paragraph by paragraph: one unwrapped line above
    it used to make every short wrapped line look like boilerplate around it."""
    (path,) = SEEDS.glob("001_*.txt")
    paragraphs = [p for p in path.read_text(encoding="utf-8").splitlines() if p.strip()]
    wrapped = "\n\n".join(textwrap.fill(p, 66) for p in paragraphs)
    lede = (
        "This long opening line was left unwrapped by the scraper: thirty words of plain prose "
        "about the city, its council and the budget they argued over all night."
    )
    alone = clean_text(wrapped)
    with_lede = clean_text(f"{lede}\n\n{wrapped}")
    kept_alone = sum(len(p.split()) for p in alone.paragraphs)
    kept_with_lede = sum(len(p.split()) for p in with_lede.paragraphs)
    assert kept_with_lede >= kept_alone
