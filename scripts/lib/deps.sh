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
