#!/usr/bin/env python3
"""The webhook caBundle stays stable across `helm upgrade` (called by tools/chart_check.sh).

Usage: chart_lookup_check.py HELM CHART_DIR WORK_DIR

`helm template` without a cluster makes `lookup` return nothing, which only exercises the
first-install path. This runs `helm template --dry-run=server` against a fake Kubernetes API
(discovery for the chart's kinds and GET of the webhook Secret, in this process) so that the
lookup really happens:
  1. no Secret: a CA and serving certificate are generated, caBundle is the Secret's ca.crt;
  2. the Secret from 1 exists (an upgrade): the same Secret data and the same caBundle;
  3. the Secret exists but lacks tls.key: a new pair, consistent again.
Exits 1 naming what differs.
"""
import http.server
import json
import os
import subprocess
import sys
import threading

import yaml

NS = "picket-system"
SECRET = "picket-webhook-tls"
RES = {
    "v1": [("secrets", "Secret", True), ("configmaps", "ConfigMap", True), ("services", "Service", True),
           ("serviceaccounts", "ServiceAccount", True), ("namespaces", "Namespace", False), ("pods", "Pod", True)],
    "apps/v1": [("deployments", "Deployment", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "batch/v1": [("jobs", "Job", True)],
    "rbac.authorization.k8s.io/v1": [("clusterroles", "ClusterRole", False), ("clusterrolebindings", "ClusterRoleBinding", False),
                                     ("roles", "Role", True), ("rolebindings", "RoleBinding", True)],
    "admissionregistration.k8s.io/v1": [("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False)],
}
state = {"secret": None, "secret_gets": 0}


class FakeApi(http.server.BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"})
        if p == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if p == "/apis":
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g.split("/")[0], "versions": [{"groupVersion": g, "version": "v1"}],
                 "preferredVersion": {"groupVersion": g, "version": "v1"}} for g in RES if "/" in g]})
        gv = "v1" if p == "/api/v1" else p[len("/apis/"):]
        if gv in RES:
            return self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": n, "singularName": "", "namespaced": ns, "kind": k, "verbs": ["get", "list", "create"]}
                for n, k, ns in RES[gv]]})
        if p == f"/api/v1/namespaces/{NS}/secrets/{SECRET}":
            state["secret_gets"] += 1
            if state["secret"] is not None:
                return self.reply(200, state["secret"])
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def log_message(self, *args):
        pass


def main():
    helm, chart, work = sys.argv[1:4]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = os.path.join(work, "fake-kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "http://127.0.0.1:{server.server_port}"}}}}]
users: [{{name: fake, user: {{token: fake}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {NS}}}}}]
current-context: fake
""")
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    problems = []

    def render(what):
        gets = state["secret_gets"]
        r = subprocess.run([helm, "template", "picket", chart, "--namespace", NS, "--dry-run=server",
                            "--disable-openapi-validation"], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"chart_lookup_check.py: helm template --dry-run=server ({what}) failed:\n{r.stderr}")
        if state["secret_gets"] == gets:
            problems.append(f"{what}: the chart did not look the webhook Secret up")
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        secret = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == SECRET]
        mwc = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
        if len(secret) != 1 or len(mwc) != 1:
            sys.exit(f"chart_lookup_check.py: {what}: expected one Secret {SECRET} and one webhook configuration")
        data = secret[0]["data"]
        bundle = mwc[0]["webhooks"][0]["clientConfig"].get("caBundle")
        if bundle != data.get("ca.crt"):
            problems.append(f"{what}: caBundle is not the Secret's ca.crt")
        return secret[0], data, bundle

    first, data1, bundle1 = render("first install")
    # As Helm would have stored it: its ownership annotations make the upgrade adopt it.
    first.setdefault("metadata", {}).setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": "picket", "meta.helm.sh/release-namespace": NS})
    state["secret"] = first
    _, data2, bundle2 = render("upgrade")
    if data2 != data1:
        problems.append("upgrade: the webhook Secret was regenerated although it exists")
    if bundle2 != bundle1:
        problems.append("upgrade: the caBundle changed")
    partial = json.loads(json.dumps(first))
    del partial["data"]["tls.key"]
    state["secret"] = partial
    _, data3, bundle3 = render("Secret without tls.key")
    if bundle3 == bundle1 or data3.get("tls.crt") == data1.get("tls.crt"):
        problems.append("Secret without tls.key: the incomplete Secret was reused")
    server.shutdown()
    for p in problems:
        print(f"chart_lookup_check.py: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("  caBundle: generated on install, kept on upgrade, regenerated for an incomplete Secret")


if __name__ == "__main__":
    main()
