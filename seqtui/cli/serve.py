"""`seqtui serve`: the app in a browser through textual-serve (localhost unless --host is given)."""

from __future__ import annotations

import shlex
import sys

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. There is no authentication: keep it local and use ssh -L.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--public-url", default=None, metavar="URL",
              help="The URL browsers use, if it differs (a reverse proxy).")
def serve(host: str, port: int, public_url: str | None) -> None:
    """Serve the app to a browser; each visit starts its own app process.

    From another machine, forward the port over SSH instead of binding publicly:

        ssh -L 8000:127.0.0.1:8000 you@server  seqtui serve

    then open http://localhost:8000 locally.
    """
    from textual_serve.server import Server

    command = f"{shlex.quote(sys.executable)} -m seqtui app"
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach port {port} gets the app "
                   "(no authentication)", err=True)
    Server(command, host=host, port=port, title="seqtui", public_url=public_url).serve()
