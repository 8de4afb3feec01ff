#!/usr/bin/env python3
"""Facts about the manifests rendered from charts/picket (called by tools/chart_check.sh).

Usage: chart_check.py RENDERED_DIR CHART_DIR

Reads RENDERED_DIR/<case>.yaml for each case below, checks what the chart promises (the
injector contract, the caBundle against the serving certificate, exact pack bytes, labels,
security settings, the webhook selectors, the dashboard queries), and writes
RENDERED_DIR/<case>.builtin.yaml with the objects of built-in kinds for kubernetes-validate
(cert-manager objects are CRDs: checked here only). Exits 1 listing every problem.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

import yaml

NS = "picket-system"
CASES = {
    # case: what its values say
    "default": dict(fullname="picket", tls="helm", mesh_secret="picket-mesh-ca", mesh_job=True,
                    replicas=2, pdb=1, pack="files/default-pack.toml", sig=None,
                    pack_cm="picket-pack", pack_namespaces=[NS], dashboard=False,
                    native=True, mode="protect", cert_ttl="24h", ca_poll="30s"),
    "all-on": dict(fullname="picket-all", tls="certManager", mesh_secret="my-mesh-ca", mesh_job=False,
                   replicas=3, pdb=2, pack="ci/test-pack.toml", sig="ci/test-pack.toml.sig",
                   pack_cm="picket-pack", pack_namespaces=[NS, "shop", "payments"], dashboard=True,
                   native=True, mode="monitor", cert_ttl="12h", ca_poll="1m"),
    "alt": dict(fullname="picket", tls="provided", mesh_secret="picket-mesh-ca", mesh_job=True,
                replicas=1, pdb=None, pack="files/default-pack.toml", sig=None,
                pack_cm="security-pack", pack_namespaces=[NS], dashboard=False,
                native=False, mode="protect", cert_ttl="24h", ca_poll="30s"),
    "issuer": dict(fullname="picket", tls="certManager", mesh_secret="picket-mesh-ca", mesh_job=True,
                   replicas=2, pdb=1, pack="files/default-pack.toml", sig=None,
                   pack_cm="picket-pack", pack_namespaces=[NS], dashboard=False,
                   native=True, mode="protect", cert_ttl="24h", ca_poll="30s"),
}
RECOMMENDED = ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
               "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"]
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
def injector_args(inj, exp):
    """The injector's command line: webhook, namespaces from the API server, identity service
    with the mesh CA Secret and the Service's DNS names, TokenReview, the workload
    certificate lifetime and the CA poll interval of the values."""
    return ["serve", "--listen", "0.0.0.0:8443", "--tls-cert", "/etc/picket/webhook-tls/tls.crt",
            "--tls-key", "/etc/picket/webhook-tls/tls.key", "--config",
            "/etc/picket/injector/config.json", "--health-listen", "0.0.0.0:8080",
            "--namespace-source", "kubernetes",
            "--mesh-ca-dir", "/etc/picket/mesh-ca", "--identity-listen", "0.0.0.0:15012",
            "--identity-dns-name", f"{inj}.{NS}.svc",
            "--identity-dns-name", f"{inj}.{NS}.svc.cluster.local",
            "--token-review", "kubernetes",
            "--workload-cert-ttl", exp["cert_ttl"], "--ca-poll", exp["ca_poll"]]
CONFIG_KEYS = {"proxyImage": str, "initImage": str, "imagePullPolicy": str, "packConfigMap": str,
               "mode": str, "nativeSidecar": bool, "resources": dict, "trustDomain": str,
               "identityAddress": str, "excludeInboundPorts": str, "excludeOutboundPorts": str,
               "excludeOutboundCidrs": str}
CONFIG_OPTIONAL = {"packKeysConfigMap": str, "requireSignedPack": bool, "allowPackRollback": bool}
DASHBOARD_QUERIES = [
    'sum by (signature) (rate(picket_findings_total{event="block"',
    "sum by (namespace, pod) (rate(picket_findings_total{",
    "histogram_quantile(",
    "picket_inspection_seconds_bucket",
    "picket_requests_total",
    "count by (version) (picket_pack_info",
]

problems = []


def check(cond, case, what):
    if not cond:
        problems.append(f"{case}: {what}")
    return cond


def b64(s):
    return base64.b64encode(s.encode()).decode()


def openssl_verify(case, ca_pem, cert_pem, dns):
    with tempfile.TemporaryDirectory() as d:
        ca, crt = os.path.join(d, "ca.crt"), os.path.join(d, "tls.crt")
        open(ca, "w").write(ca_pem)
        open(crt, "w").write(cert_pem)
        v = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", ca, crt],
                           capture_output=True, text=True)
        check(v.returncode == 0, case, f"serving certificate does not verify against the caBundle: {v.stdout}{v.stderr}")
        t = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True)
        check(f"DNS:{dns}" in t.stdout, case, f"serving certificate lacks DNS:{dns}: {t.stdout}")


def check_case(case, exp, docs, chart):
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)

    def one(kind, name=None):
        objs = [d for d in by.get(kind, []) if name is None or d["metadata"]["name"] == name]
        check(len(objs) == 1, case, f"expected one {kind} {name or ''}, found {len(objs)}")
        return objs[0] if objs else {}

    for d in docs:
        md = d.get("metadata", {})
        where = f"{d['kind']}/{md.get('name')}"
        labels = md.get("labels") or {}
        for k in RECOMMENDED:
            check(k in labels, case, f"{where} lacks label {k}")
        if d["kind"] not in CLUSTER_SCOPED and where != f"ConfigMap/{exp['fullname']}-dashboard":
            check(md.get("namespace") is not None, case, f"{where} has no namespace")

    inj = f"{exp['fullname']}-injector"
    dep = one("Deployment", inj)
    pod = dep.get("spec", {}).get("template", {}).get("spec", {})
    check(dep.get("spec", {}).get("replicas") == exp["replicas"], case, "injector replicas")
    # Every pod the chart runs (injector, mesh CA Job) meets the restricted Pod Security
    # Standard and has a read-only root filesystem.
    for w in by.get("Deployment", []) + by.get("Job", []):
        where = f"{w['kind']}/{w['metadata']['name']}"
        spec = w["spec"]["template"]["spec"]
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, case, f"{where}: pod runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", case, f"{where}: seccomp RuntimeDefault")
        for ctr in spec.get("containers", []) + spec.get("initContainers", []):
            sc = ctr.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True, case, f"{where}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, case, f"{where}: allowPrivilegeEscalation")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], case, f"{where}: capabilities drop ALL")
    (c,) = pod.get("containers", [{}])
    check(c.get("args") == injector_args(inj, exp), case, f"injector args {c.get('args')}")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"webhook": 8443, "identity": 15012, "health": 8080}, case, f"container ports {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        check(g.get("path") == path and ports.get(g.get("port")) == 8080, case, f"{probe} {g}")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for path in ("/etc/picket/webhook-tls", "/etc/picket/injector", "/etc/picket/mesh-ca"):
        check(path in mounts, case, f"nothing mounted at {path}")
    mesh_vol = vols.get(mounts.get("/etc/picket/mesh-ca"), {})
    check(mesh_vol.get("secret", {}).get("secretName") == exp["mesh_secret"], case, f"mesh CA volume {mesh_vol}")
    tls_secret = vols.get(mounts.get("/etc/picket/webhook-tls"), {}).get("secret", {}).get("secretName")
    cfg_cm = vols.get(mounts.get("/etc/picket/injector"), {}).get("configMap", {}).get("name")

    svc = one("Service", inj)
    sp = {p["port"]: ports.get(p["targetPort"]) for p in svc.get("spec", {}).get("ports", [])}
    check(sp == {443: 8443, 15012: 15012, 8080: 8080}, case, f"service ports {sp}")
    check(svc.get("spec", {}).get("selector", {}).items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
          case, "service selector does not select the injector pods")

    pdbs = by.get("PodDisruptionBudget", [])
    if exp["pdb"] is None:
        check(not pdbs, case, "unexpected PodDisruptionBudget")
    else:
        check(len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] == exp["pdb"], case, "PodDisruptionBudget minAvailable")

    cr = one("ClusterRole", inj)
    rules = {(g, r, v) for rule in cr.get("rules", []) for g in rule["apiGroups"]
             for r in rule["resources"] for v in rule["verbs"]}
    want = {("authentication.k8s.io", "tokenreviews", "create"), ("", "namespaces", "get"),
            ("", "namespaces", "list"), ("", "namespaces", "watch")}
    check(rules == want, case, f"ClusterRole rules {rules}")
    crb = one("ClusterRoleBinding", inj)
    check(crb.get("subjects", [{}])[0].get("name") == pod.get("serviceAccountName"), case,
          "ClusterRoleBinding subject is not the injector's ServiceAccount")

    # Injector configuration: the contract's keys, all there, nothing unknown.
    cm = one("ConfigMap", cfg_cm)
    cfg = json.loads(cm.get("data", {}).get("config.json", "{}"))
    for k, t in CONFIG_KEYS.items():
        check(isinstance(cfg.get(k), t), case, f"config.json {k} missing or not {t.__name__}")
    extra = set(cfg) - set(CONFIG_KEYS) - set(CONFIG_OPTIONAL)
    check(not extra, case, f"config.json has unknown keys {extra}")
    check(cfg.get("identityAddress") == f"{inj}.{NS}.svc:15012", case, f"identityAddress {cfg.get('identityAddress')}")
    check(cfg.get("packConfigMap") == exp["pack_cm"], case, "packConfigMap")
    check(cfg.get("nativeSidecar") is exp["native"] and cfg.get("mode") == exp["mode"], case, "mode/nativeSidecar")

    # Pack ConfigMaps: exact bytes, in every target namespace.
    pack = open(os.path.join(chart, exp["pack"])).read()
    sig = open(os.path.join(chart, exp["sig"])).read() if exp["sig"] else None
    packs = [d for d in by.get("ConfigMap", []) if d["metadata"]["name"] == exp["pack_cm"]]
    check(sorted(p["metadata"]["namespace"] for p in packs) == sorted(exp["pack_namespaces"]), case,
          f"pack ConfigMaps in {[p['metadata']['namespace'] for p in packs]}")
    for p in packs:
        check(p["data"].get("pack.toml") == pack, case, f"pack.toml in {p['metadata']['namespace']} differs from {exp['pack']}")
        check(p["data"].get("pack.toml.sig") == sig, case, "pack.toml.sig differs")
    if cfg.get("packKeysConfigMap"):
        keys = [d for d in by.get("ConfigMap", []) if d["metadata"]["name"] == cfg["packKeysConfigMap"]]
        check(len(keys) == len(exp["pack_namespaces"]), case, "pack keys ConfigMap not beside every pack")
        check(all(k["data"] and all(n.endswith(".pub") for n in k["data"]) for k in keys), case, "pack keys")

    # The webhook.
    mwc = one("MutatingWebhookConfiguration", inj)
    (wh,) = mwc.get("webhooks", [{}])
    check(wh.get("sideEffects") == "None" and wh.get("admissionReviewVersions") == ["v1"], case, "sideEffects/admissionReviewVersions")
    check(wh.get("rules") and all(r["operations"] == ["CREATE"] and r["resources"] == ["pods"] for r in wh["rules"]), case, "rules")
    sel = wh.get("namespaceSelector", {})
    check(sel.get("matchLabels") == {"picket.dev/inject": "enabled"}, case, "namespaceSelector label")
    notin = [e for e in sel.get("matchExpressions", []) if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
    check(notin and {NS, "kube-system"} <= set(notin[0]["values"]), case, "release namespace and kube-system not excluded")
    cc = wh.get("clientConfig", {})
    check(cc.get("service", {}).get("name") == inj and cc["service"].get("namespace") == NS, case, "clientConfig.service")
    if exp["tls"] == "helm":
        secret = one("Secret", tls_secret)
        data = secret.get("data", {})
        check(cc.get("caBundle") and cc.get("caBundle") == data.get("ca.crt"), case, "caBundle is not the Secret's ca.crt")
        if data.get("ca.crt") and data.get("tls.crt"):
            openssl_verify(case, base64.b64decode(data["ca.crt"]).decode(), base64.b64decode(data["tls.crt"]).decode(),
                           f"{inj}.{NS}.svc")
    elif exp["tls"] == "certManager":
        check("caBundle" not in cc, case, "caBundle set although cert-manager injects it")
        cert = one("Certificate", tls_secret)
        check(mwc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") == f"{NS}/{tls_secret}", case, "inject-ca-from")
        check(cert.get("spec", {}).get("secretName") == tls_secret, case, "Certificate secretName")
        check(f"{inj}.{NS}.svc" in cert.get("spec", {}).get("dnsNames", []), case, "Certificate dnsNames")
        issuer = cert.get("spec", {}).get("issuerRef", {}).get("name")
        check(issuer == "corp-ca" or any(i["metadata"]["name"] == issuer for i in by.get("Issuer", [])), case, f"issuer {issuer} not there")
    else:
        check(cc.get("caBundle"), case, "no caBundle (provided)")
        check(not by.get("Secret"), case, "a Secret rendered although the TLS is provided")

    jobs = by.get("Job", [])
    check(bool(jobs) == exp["mesh_job"], case, "mesh CA bootstrap Job presence")
    for j in jobs:
        ann = j["metadata"].get("annotations", {})
        check(ann.get("helm.sh/hook") == "pre-install,pre-upgrade", case, "Job is not a pre-install/pre-upgrade hook")
        env = {e["name"]: e.get("value") for e in j["spec"]["template"]["spec"]["containers"][0]["env"]}
        check(env.get("SECRET") == exp["mesh_secret"], case, "Job creates another Secret than the injector mounts")
        check(env.get("TRUST_DOMAIN") == cfg.get("trustDomain"), case, "Job trust domain differs from the injector's")

    dash = [d for d in by.get("ConfigMap", []) if d["metadata"]["name"].endswith("-dashboard")]
    check(bool(dash) == exp["dashboard"], case, "dashboard presence")
    for d in dash:
        check(d["metadata"]["labels"].get("grafana_dashboard") == "1", case, "dashboard label")
        (text,) = d["data"].values()
        exprs = " ".join(t["expr"] for p in json.loads(text)["panels"] for t in p.get("targets", []))
        for q in DASHBOARD_QUERIES:
            check(q in exprs, case, f"dashboard lacks {q}")


def main():
    rendered, chart = sys.argv[1], sys.argv[2]
    for case, exp in CASES.items():
        with open(os.path.join(rendered, f"{case}.yaml")) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not check(docs, case, "nothing rendered"):
            continue
        check_case(case, exp, docs, chart)
        builtin = [d for d in docs if not d["apiVersion"].startswith("cert-manager.io/")]
        with open(os.path.join(rendered, f"{case}.builtin.yaml"), "w") as f:
            yaml.safe_dump_all(builtin, f, sort_keys=False)
        print(f"  {case}: {len(docs)} objects, {len(builtin)} of built-in kinds")
    for p in problems:
        print(f"chart_check.py: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
