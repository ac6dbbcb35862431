"""The search page: messages of the rooms this person may read that match their words."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat import access, search


@require_GET
def search_page(request):
    """GET q (and room): the results, best first, each linking to its message in its room; 400 with
    the sentence for a query that cannot be run. Without q: the form."""
    readable = access.rooms_of(request)
    query, room = request.GET.get("q"), request.GET.get("room", "")
    context = {"rooms": readable, "q": query or "", "room_key": room, "results": None}
    if query is None:
        return render(request, "chat/search.html", context)
    try:
        context["results"] = search.find_readable(query, readable, room, search.MOST)
    except search.BadQuery as problem:
        return render(request, "chat/search.html", {**context, "problem": str(problem)}, status=400)
    titles = {entry.key: entry.title for entry in readable}
    context["results"] = [(result, titles.get(result.room, result.room)) for result in context["results"]]
    return render(request, "chat/search.html", context)
