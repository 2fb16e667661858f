"""GitHub webhook events as short, readable Matrix messages.

``push``, ``pull_request``, ``issues`` and ``release`` get a proper rendering; any other event a
one-line summary (who, what, where), so a hook subscribed to "everything" is still readable.
``ping`` (sent when a hook is set up) is answered without posting anything.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from bridges.webhook.slack import Lines

MAX_COMMITS = 10


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _str(data: Any, *path: str) -> str:
    value = _get(data, *path)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _link(url: str, label: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
    return html.escape(label)


def _result(lines: Lines, *, as_list_from: int | None = None) -> tuple[str, str]:
    """(plain, HTML): lines, the HTML ones from ``as_list_from`` on as a list."""
    if as_list_from is None:
        return "\n".join(lines.plain), "<br>".join(lines.html)
    head = "<br>".join(lines.html[:as_list_from])
    items = "".join(f"<li>{item}</li>" for item in lines.html[as_list_from:])
    return "\n".join(lines.plain), head + (f"<ul>{items}</ul>" if items else "")


def _push(payload: Mapping[str, Any]) -> tuple[str, str]:
    who = _str(payload, "pusher", "name") or _str(payload, "sender", "login")
    repo = _str(payload, "repository", "full_name")
    ref = _str(payload, "ref")
    branch = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    commits = [c for c in payload.get("commits") or [] if isinstance(c, Mapping)]
    compare = _str(payload, "compare")
    lines = Lines()
    if payload.get("deleted"):
        lines.add(f"{who} deleted {branch} in {repo}", f"<strong>{html.escape(who)}</strong> deleted "
                  f"<code>{html.escape(branch)}</code> in {html.escape(repo)}")
        return _result(lines)
    count = len(commits)
    noun = "commit" if count == 1 else "commits"
    lines.add(
        f"{who} pushed {count} {noun} to {repo}:{branch}" + (f" ({compare})" if compare else ""),
        f"<strong>{html.escape(who)}</strong> pushed {_link(compare, f'{count} {noun}')} to "
        f"{html.escape(repo)}:<code>{html.escape(branch)}</code>",
    )
    for commit in commits[:MAX_COMMITS]:
        sha = _str(commit, "id")[:7]
        title = _str(commit, "message").split("\n", 1)[0]
        author = _str(commit, "author", "name") or _str(commit, "author", "username")
        lines.add(f"- {sha} {title} ({author})",
                  f"{_link(_str(commit, 'url'), sha)} {html.escape(title)} ({html.escape(author)})")
    if count > MAX_COMMITS:
        lines.add(f"- and {count - MAX_COMMITS} more", f"and {count - MAX_COMMITS} more")
    return _result(lines, as_list_from=1)


def _numbered(kind: str, key: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    item = payload.get(key) if isinstance(payload.get(key), Mapping) else {}
    who = _str(payload, "sender", "login")
    action = _str(payload, "action")
    if kind == "pull request" and action == "closed" and _get(item, "merged"):
        action = "merged"
    repo = _str(payload, "repository", "full_name")
    number = _str(item, "number")
    title = _str(item, "title")
    url = _str(item, "html_url")
    plain = f"{who} {action} {kind} {repo}#{number}: {title}" + (f" ({url})" if url else "")
    marked = (f"<strong>{html.escape(who)}</strong> {html.escape(action)} {kind} "
              f"{_link(url, f'{repo}#{number}')}: {html.escape(title)}")
    return plain, marked


def _release(payload: Mapping[str, Any]) -> tuple[str, str]:
    who = _str(payload, "sender", "login")
    action = _str(payload, "action")
    repo = _str(payload, "repository", "full_name")
    tag = _str(payload, "release", "tag_name")
    name = _str(payload, "release", "name") or tag
    url = _str(payload, "release", "html_url")
    plain = f"{who} {action} release {name} ({tag}) of {repo}" + (f": {url}" if url else "")
    marked = (f"<strong>{html.escape(who)}</strong> {html.escape(action)} release {_link(url, name)} "
              f"(<code>{html.escape(tag)}</code>) of {html.escape(repo)}")
    return plain, marked


def _summary(event: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    who = _str(payload, "sender", "login") or "someone"
    action = _str(payload, "action")
    where = _str(payload, "repository", "full_name") or _str(payload, "organization", "login")
    what = f"{event.replace('_', ' ')}" + (f" ({action})" if action else "")
    plain = f"{who}: {what}" + (f" in {where}" if where else "")
    marked = f"<strong>{html.escape(who)}</strong>: {html.escape(what)}"
    marked += f" in {html.escape(where)}" if where else ""
    return plain, marked


def render_github(event: str, payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(plain, HTML) for a GitHub event, or None for ``ping`` (nothing to post)."""
    if event == "ping":
        return None
    if event == "push":
        return _push(payload)
    if event == "pull_request":
        return _numbered("pull request", "pull_request", payload)
    if event == "issues":
        return _numbered("issue", "issue", payload)
    if event == "release":
        return _release(payload)
    return _summary(event, payload)


__all__ = ["render_github"]
