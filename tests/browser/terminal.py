"""A command typed into a JupyterLab terminal of a logged-in user (tests/test_workshop.py).

A terminal tab in JupyterLab is a terminado session on the server (``POST api/terminals``) that the tab
drives over a websocket (``terminals/websocket/<name>``: ``["stdin", text]`` in, ``["stdout", text]``
out). This module does the same from the user's page, with that page's cookies and XSRF token, so the
command runs exactly where a terminal tab's would: the server's login shell (``bash -l``, which reads
/etc/profile), as that user, in the server's environment. Reading xterm.js's canvas would be the only
other way to see the output.
"""

from __future__ import annotations

_RUN = """async ([base, command, marker, timeoutMs]) => {
  const xsrf = (document.cookie.split('; ').find(c => c.startsWith('_xsrf=')) || '').slice(6);
  const headers = {'X-XSRFToken': decodeURIComponent(xsrf)};
  const made = await fetch(base + 'api/terminals', {method: 'POST', headers});
  if (!made.ok) return {error: 'POST api/terminals: HTTP ' + made.status};
  const {name} = await made.json();
  const url = base.replace(/^http/, 'ws') + 'terminals/websocket/' + name;
  const out = await new Promise(resolve => {
    let text = '';
    const ws = new WebSocket(url);
    const done = () => {
      try { ws.send(JSON.stringify(['stdin', 'exit\\r'])); ws.close(); } catch (e) {}
      resolve(text);
    };
    const timer = setTimeout(done, timeoutMs);
    ws.onmessage = e => {
      const [kind, data] = JSON.parse(e.data);
      if (kind === 'stdout') { text += data; if (text.includes(marker)) { clearTimeout(timer); done(); } }
    };
    ws.onopen = () => ws.send(JSON.stringify(['stdin', command + '\\r']));
    ws.onerror = () => { clearTimeout(timer); resolve(text + '\\n[websocket error]'); };
  });
  await fetch(base + 'api/terminals/' + name, {method: 'DELETE', headers});
  return {output: out};
}"""


def run(page, server_base: str, command: str, timeout_s: float = 120.0) -> tuple[str, int | None]:
    """Type ``command`` into a new terminal of the server at ``server_base`` (``.../user/<name>/``);
    returns (everything the terminal printed, the command's exit status or None if it did not finish)."""
    # The marker's digits come from the shell's arithmetic, so the echoed command line never matches it.
    marker = "TG-TERMINAL-DONE"
    line = f"{command}; echo \"{marker[:3]}$((0))-{marker[3:]}:$?:\""
    found = f"{marker[:3]}0-{marker[3:]}:"
    result = page.evaluate(_RUN, [server_base, line, found, int(timeout_s * 1000)])
    if "error" in result:
        raise AssertionError(f"could not open a terminal on {server_base}: {result['error']}")
    text = result["output"]
    if found not in text:
        return text, None
    status = text.split(found, 1)[1].split(":", 1)[0]
    return text, int(status) if status.isdigit() else None
