"""Names people pick: look-alikes of a bot's or an account's name are refused, after NFKC and confusable folding."""

import pytest

from chat.names import check_name, skeleton

pytestmark = pytest.mark.django_db

BOT_LOOK_ALIKES = [
    "ＣhatBot",  # fullwidth C
    "Сhatbot",  # Cyrillic С
    "ChatBоt",  # Cyrillic о
    "CHATB0T",  # a zero for the O
    "Ρirate",  # Greek Ρ
    "@ＰirateBot",
    "Southern Вelle",  # Cyrillic В
    "ﬁrst",  # not a bot: the ligature folds, and the name is allowed (checked below)
]


def test_skeletons_fold_width_case_and_look_alikes():
    assert skeleton("ＣhatBot") == skeleton("Сhatbot") == skeleton("chatbot") == "chatbot"
    assert skeleton("ΑΝΑ") == skeleton("ana")  # Greek capitals
    assert skeleton("Ana") != skeleton("Ann")


@pytest.mark.parametrize("name", BOT_LOOK_ALIKES[:-1])
def test_a_bot_s_look_alike_is_refused_with_a_sentence(name):
    assert check_name(name) == ("", f"{name!r} is, or looks like, a bot's name here; pick another.")


def test_names_that_only_share_letters_are_fine():
    assert check_name(BOT_LOOK_ALIKES[-1]) == ("ﬁrst", "")
    assert check_name("Chatty") == ("Chatty", "")
    assert check_name("Ana Lucía") == ("Ana Lucía", "")


@pytest.mark.parametrize("name", ["maria", "MARIA", "mаria", "Ｍaria", "mαria"])
def test_an_account_s_name_or_its_look_alike_is_refused(django_user_model, name):
    django_user_model.objects.create_user("Maria", password="pw-maria-123")
    assert check_name(name) == ("", f"{name!r} is, or looks like, the name of someone with an account here; pick another.")


def test_an_account_whose_name_is_itself_cyrillic_is_matched_by_its_latin_look_alike(django_user_model):
    django_user_model.objects.create_user("Сова", password="pw-owl-12345")  # Cyrillic
    assert check_name("CoBa")[0] == ""  # Latin C, o, B, a: looks the same
    assert check_name("Cobra") == ("Cobra", "")


def test_a_guest_cannot_take_a_look_alike_over_the_profile_form(client, django_user_model):
    django_user_model.objects.create_user("maria", password="pw-maria-123")
    for name in ("Сhatbot", "ｍaria"):
        response = client.post("/profile", {"name": name})
        assert response.status_code == 400
        assert "looks like" in response.text
        assert client.session.get("name") is None
    assert client.post("/profile", {"name": "Marta"}).status_code == 303
    assert client.session["name"] == "Marta"
