# Shared by scripts/sweep-report and scripts/elastic-actors: a Python that has matplotlib.
# The peers venv (/tmp/peers/bin/python) when it has it, else runs/.venv (created, then
# `pip install matplotlib`). Says what it does on stderr; prints the interpreter on stdout.
tether_plot_python() {
    local py
    for py in /tmp/peers/bin/python runs/.venv/bin/python; do
        if [ -x "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null; then echo "$py"; return 0; fi
    done
    echo "== matplotlib not found in /tmp/peers or runs/.venv: creating runs/.venv and pip installing matplotlib" >&2
    mkdir -p runs
    if [ ! -x runs/.venv/bin/python ]; then
        python3 -m venv runs/.venv >&2 || { echo "error: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; return 1; }
    fi
    runs/.venv/bin/pip install -q matplotlib >&2 || { echo "error: pip install matplotlib failed" >&2; return 1; }
    runs/.venv/bin/python -c 'import matplotlib' || { echo "error: matplotlib still not importable from runs/.venv" >&2; return 1; }
    echo runs/.venv/bin/python
}
