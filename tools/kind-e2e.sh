#!/usr/bin/env bash
# End-to-end run of picket on a local kind cluster. Needs Docker (BuildKit), kind, kubectl,
# helm 3.8+ and internet access for the base images and the sample app; it is not part of CI
# (the CI machine has no Docker daemon). From the repository root:
#
#   tools/kind-e2e.sh            # create cluster picket-e2e, build, install, test, delete
#   KEEP=1 tools/kind-e2e.sh     # leave the cluster running afterwards
#
# Steps: create the cluster; build the picket, picket-init and picket-injector images and
# load them into the nodes; helm install the chart; check that a second helm upgrade keeps
# the webhook caBundle and the mesh CA; label a namespace picket.dev/inject=enabled; deploy a
# sample HTTP server there; check that its pod got the picket-proxy sidecar and the
# picket.dev/injected annotation; from an uninjected client pod send a benign request (must
# get 200) and a Shellshock attack (must be reset); show the block log line with kubectl logs
# and the pack the sidecar runs (/pack on 15090).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-picket-e2e}
TAG=${TAG:-e2e}
NS=${NS:-picket-system}
APP_NS=${APP_NS:-picket-demo}
KEEP=${KEEP:-0}
APP_IMAGE=${APP_IMAGE:-registry.k8s.io/e2e-test-images/agnhost:2.53}
CLIENT_IMAGE=${CLIENT_IMAGE:-curlimages/curl:8.10.1}

step() { printf '\n=== %s\n' "$*"; }
die() { echo "kind-e2e: FAILED: $*" >&2; exit 1; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

if [ "$KEEP" != 1 ]; then
  trap 'kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true' EXIT
fi

step "cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "build and load images (tag $TAG)"
export DOCKER_BUILDKIT=1
docker build -f docker/picket.Dockerfile -t "picket:$TAG" .
docker build -f docker/picket.Dockerfile --target picket-init -t "picket-init:$TAG" .
docker build -f docker/picket-injector.Dockerfile -t "picket-injector:$TAG" .
for image in picket picket-init picket-injector; do
  kind load docker-image "$image:$TAG" --name "$CLUSTER"
done

step "helm install picket into $NS"
helm_args=(--namespace "$NS" --create-namespace --wait --timeout 5m
  --set "pack.targetNamespaces={$APP_NS}")
for image in picket picketInit picketInjector; do
  case $image in picket) repo=picket ;; picketInit) repo=picket-init ;; picketInjector) repo=picket-injector ;; esac
  helm_args+=(--set "image.$image.registry=" --set "image.$image.repository=$repo"
    --set "image.$image.tag=$TAG" --set "image.$image.pullPolicy=Never")
done
kubectl create namespace "$APP_NS" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install picket charts/picket "${helm_args[@]}"
kubectl -n "$NS" rollout status deployment/picket-injector --timeout 120s

step "a second helm upgrade keeps the webhook caBundle and the mesh CA"
ca_bundle() { kubectl get mutatingwebhookconfiguration picket-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}'; }
mesh_ca() { kubectl -n "$NS" get secret picket-mesh-ca -o jsonpath='{.data.root\.crt}{.data.intermediate\.crt}'; }
before_ca=$(ca_bundle); before_mesh=$(mesh_ca)
{ [ -n "$before_ca" ] && [ -n "$before_mesh" ]; } || die "no caBundle or no mesh CA Secret after install"
[ "$before_ca" = "$(kubectl -n "$NS" get secret picket-webhook-tls -o jsonpath='{.data.ca\.crt}')" ] \
  || die "caBundle is not the serving Secret's ca.crt"
helm upgrade picket charts/picket "${helm_args[@]}" --set webhook.timeoutSeconds=9
[ "$before_ca" = "$(ca_bundle)" ] || die "caBundle changed on helm upgrade"
[ "$before_mesh" = "$(mesh_ca)" ] || die "mesh CA changed on helm upgrade"
echo "caBundle and mesh CA unchanged"

step "opt $APP_NS in and deploy a sample app"
kubectl label namespace "$APP_NS" picket.dev/inject=enabled --overwrite
kubectl -n "$APP_NS" apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
        - name: echo
          image: $APP_IMAGE
          args: ["netexec", "--http-port=8080"]
          ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  annotations: {picket.dev/inject: "false"}
spec:
  containers:
    - name: curl
      image: $CLIENT_IMAGE
      command: ["sleep", "3600"]
EOF
kubectl -n "$APP_NS" rollout status deployment/echo --timeout 180s
kubectl -n "$APP_NS" wait --for=condition=Ready pod/client --timeout 120s
pod=$(kubectl -n "$APP_NS" get pod -l app=echo -o jsonpath='{.items[0].metadata.name}')

step "pod $pod is injected"
names=$(kubectl -n "$APP_NS" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')
echo "containers: $names"
case " $names " in *" picket-proxy "*) ;; *) die "no picket-proxy container in $pod" ;; esac
injected=$(kubectl -n "$APP_NS" get pod "$pod" -o jsonpath='{.metadata.annotations.picket\.dev/injected}')
[ -n "$injected" ] || die "no picket.dev/injected annotation on $pod"
echo "picket.dev/injected: $injected"
client_names=$(kubectl -n "$APP_NS" get pod client -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')
case " $client_names " in *" picket-proxy "*) die "the opted-out client pod was injected" ;; esac

step "the pack the sidecar runs (/pack on 15090)"
kubectl -n "$APP_NS" port-forward "pod/$pod" 15090:15090 >/dev/null 2>&1 &
pf=$!
sleep 2
curl -fsS http://127.0.0.1:15090/pack || die "/pack did not answer"
echo
kill "$pf"

step "benign request"
code=$(kubectl -n "$APP_NS" exec client -- curl -s -o /dev/null -w '%{http_code}' "http://echo.$APP_NS/")
[ "$code" = 200 ] || die "benign request got HTTP $code"
echo "HTTP $code"

step "attack (Shellshock in User-Agent)"
if kubectl -n "$APP_NS" exec client -- curl -sS -o /dev/null -A '() { :; }; /bin/id' "http://echo.$APP_NS/"; then
  die "the attack was answered"
fi
echo "refused (connection reset)"

step "block log (kubectl logs -c picket-proxy)"
sleep 1
kubectl -n "$APP_NS" logs "$pod" -c picket-proxy | grep '"event":"block"' | tail -n 1 \
  || die "no block log line in the sidecar's log"

step "ok"
