"""Sign-in for people: Django's own log-in views, sign-up while SIGNUP is open, and the limit on
failed log-ins that the people's log-in and the admin's share."""

import functools

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from chat import limits
from chat.names import check_name


def login_limited(view):
    """A log-in view that answers 429 with Retry-After, before checking any password, while the
    account or the address asking has failed too often lately."""

    @functools.wraps(view)
    def limited(request, *args, **kwargs):
        if request.method == "POST" and (refusal := limits.check_login(request, request.POST.get("username"))):
            response = render(request, "registration/refused.html", {"problem": refusal.message}, status=429)
            response["Retry-After"] = str(refusal.retry_after)
            return response
        return view(request, *args, **kwargs)

    return limited


def count_failure(sender, credentials, request=None, **kwargs):
    """user_login_failed's receiver: a wrong password counts against its account and its address."""
    if request is not None:
        limits.count_login_failure(request, credentials.get("username"))


class SignupForm(UserCreationForm):
    """Django's sign-up form, and a username that is not a bot's (people would take it for the bot)."""

    def clean_username(self):
        username = super().clean_username()
        _, problem = check_name(username)
        if problem:
            raise ValidationError(problem)
        return username


@require_http_methods(["GET", "POST"])
def signup(request):
    """GET: the sign-up form. POST username, password1, password2: the account, signed in, 302 to the lobby."""
    if settings.SIGNUP != "open":
        raise Http404(_("Sign-up is closed here: ask the people who run this Parley for an account."))
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        login(request, form.save(), backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)
