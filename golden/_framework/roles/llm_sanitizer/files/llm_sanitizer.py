#!/usr/bin/python3
"""anklume LLM sanitiser (role llm_sanitizer): an OpenAI-compatible HTTP
proxy that redacts private data from prompts before forwarding them.

Usage: llm_sanitizer.py CONFIG.json

The configuration holds: host, port, upstream (base URL), fallback (base
URL tried when upstream fails, or ""), sanitize (bool), names (strings
always redacted) and patterns (extra regular expressions). Only JSON
request bodies are rewritten: every string value under "messages",
"prompt", "input" and "system" goes through redact(). Responses are
passed back unchanged. Standard library only."""

import http.server
import json
import re
import sys
import urllib.error
import urllib.request

BUILTIN = [
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?\b"), "[IP]"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "[EMAIL]"),
    (re.compile(r"\b(?:sk|pk|ghp|gho|xox[bap])[-_][A-Za-z0-9_-]{16,}\b"), "[SECRET]"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), "[SECRET]"),
]
FIELDS = ("messages", "prompt", "input", "system")


def compile_rules(config):
    """Return the (regex, placeholder) list for a configuration."""
    rules = list(BUILTIN)
    names = sorted({n for n in config.get("names", []) if n}, key=len, reverse=True)
    if names:
        rules.append((re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b"), "[HOST]"))
    for p in config.get("patterns", []):
        rules.append((re.compile(p), "[REDACTED]"))
    return rules


def redact(value, rules):
    """Redact every string inside value (strings, lists, dicts)."""
    if isinstance(value, str):
        for regex, placeholder in rules:
            value = regex.sub(placeholder, value)
        return value
    if isinstance(value, list):
        return [redact(v, rules) for v in value]
    if isinstance(value, dict):
        return {k: redact(v, rules) for k, v in value.items()}
    return value


def sanitize_body(body, rules):
    """Return the request body with its prompt fields redacted."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if not isinstance(doc, dict):
        return body
    for field in FIELDS:
        if field in doc:
            doc[field] = redact(doc[field], rules)
    return json.dumps(doc).encode()


def make_handler(config):
    rules = compile_rules(config)
    bases = [b.rstrip("/") for b in (config["upstream"], config.get("fallback", "")) if b]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if body and config.get("sanitize"):
                body = sanitize_body(body, rules)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            last = None
            for base in bases:
                req = urllib.request.Request(base + self.path, data=body or None, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=600) as resp:
                        return self._reply(resp.status, resp.headers, resp.read())
                except urllib.error.HTTPError as e:
                    return self._reply(e.code, e.headers, e.read())
                except (urllib.error.URLError, OSError) as e:
                    last = e
            self._reply(502, {}, json.dumps({"error": "llm_sanitizer: upstream unreachable: %s" % last}).encode())

        def _reply(self, status, headers, data):
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    return Handler


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: llm_sanitizer.py CONFIG.json\n")
        return 2
    with open(argv[1], encoding="utf-8") as f:
        config = json.load(f)
    server = http.server.ThreadingHTTPServer((config.get("host", "0.0.0.0"), int(config["port"])), make_handler(config))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
