# Shared by run_fsdp_example.sh and run_sequence_parallel_example.sh (sourced, not run).
#
# What a workstation needs from mpirun (OpenMPI's `mpirun`, package openmpi-bin; MPICH's flags differ):
#
#   -np N                One process per GPU. wanstudio gives local rank i the GPU cuda:i, so N must not
#                        exceed the GPUs this node has (CUDA_VISIBLE_DEVICES counts); otherwise every rank
#                        stops with "N processes run on this node but it has G GPU(s)".
#   --bind-to none       OpenMPI binds each rank to ONE core by default (np <= 2) or one socket (np > 2).
#                        A rank is multi-threaded (LibTorch CPU threads, CUDA host threads, NCCL proxy
#                        threads, the Qt event loop on rank 0): pinned to one core it crawls during loading
#                        and text encoding. On a dual-socket machine `--map-by numa --bind-to numa` keeps
#                        each rank on one NUMA node instead; it does not choose the GPU (the local rank
#                        does), so prefer it only when ranks 0..N/2-1's GPUs hang off the first socket.
#   -x VAR               Exports VAR to every rank. On one node the ranks inherit mpirun's environment
#                        anyway; -x makes it explicit and is what a second node would need. Passed when set:
#                        CUDA_VISIBLE_DEVICES (which GPUs, and in which order, local rank i maps to),
#                        every NCCL_* (NCCL_DEBUG, NCCL_P2P_DISABLE, NCCL_NVLS_ENABLE, ...), OMP_NUM_THREADS,
#                        WAN_LOG, and for the window on rank 0 DISPLAY / WAYLAND_DISPLAY / XAUTHORITY /
#                        XDG_RUNTIME_DIR / QT_QPA_PLATFORM (other ranks never open a window).
#   --allow-run-as-root  OpenMPI refuses to start as root (containers) without it; added only when the
#                        script runs as root. Never needed for a normal user.
#   --oversubscribe      Only when the machine has fewer cores than N (OpenMPI counts one slot per core).
#                        Add it through MPIRUN_FLAGS.
#
# Environment: WANSTUDIO (the binary; default: next to these scripts' install location, the source tree's
# build/app/wanstudio, or `wanstudio` on PATH), MPIRUN (default mpirun), MPIRUN_FLAGS (extra mpirun flags,
# split on spaces).

wl_usage() {
    cat <<USAGE
Usage: $WL_NAME CKPT_DIR [NUM_GPUS=$WL_DEFAULT_GPUS] [--dry-run] [-- wanstudio options...]

$WL_ABOUT

  CKPT_DIR    a Wan2.1-T2V checkpoint directory (config.json, the DiT, T5, VAE and tokenizer)
  NUM_GPUS    processes to start, one per GPU (default $WL_DEFAULT_GPUS)
  --dry-run   print the layout and the two command lines, run nothing
  -- ...      more wanstudio options (e.g. --t5-cpu, --size 1280*720, --prompt TEXT for a headless run);
              they go to both commands, except --prompt/--batch (which cannot be combined with --check)

First runs \`wanstudio --check\` with the same layout under mpirun; starts wanstudio only if it passed.
USAGE
}

# Sets CKPT_DIR, NUM_GPUS, DRY_RUN and the array EXTRA from the command line.
wl_parse_args() {
    CKPT_DIR=""
    NUM_GPUS=""
    DRY_RUN=0
    EXTRA=()
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) wl_usage; exit 0 ;;
            --dry-run) DRY_RUN=1 ;;
            --) shift; EXTRA=("$@"); break ;;
            -*) echo "$WL_NAME: unknown option '$1' (wanstudio options go after --)" >&2; wl_usage >&2; exit 2 ;;
            *)
                if [ -z "$CKPT_DIR" ]; then CKPT_DIR="$1"
                elif [ -z "$NUM_GPUS" ]; then NUM_GPUS="$1"
                else echo "$WL_NAME: unexpected argument '$1'" >&2; wl_usage >&2; exit 2
                fi ;;
        esac
        shift
    done
    if [ -z "$CKPT_DIR" ]; then wl_usage >&2; exit 2; fi
    NUM_GPUS=${NUM_GPUS:-$WL_DEFAULT_GPUS}
    case "$NUM_GPUS" in
        ''|*[!0-9]*|0*) echo "$WL_NAME: NUM_GPUS '$NUM_GPUS' must be a positive integer" >&2; exit 2 ;;
    esac
}

# Prints num_heads from CKPT_DIR/config.json (the DiT's attention heads: 12 for 1.3B, 40 for 14B).
wl_num_heads() {
    local cfg="$1/config.json" heads
    if [ ! -f "$cfg" ]; then
        echo "$WL_NAME: $cfg not found: CKPT_DIR must be a Wan2.1-T2V checkpoint directory" >&2
        return 1
    fi
    heads=$(tr -d '\n' < "$cfg" | sed -n 's/.*"num_heads"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
    if [ -z "$heads" ] || [ "$heads" -lt 1 ]; then
        echo "$WL_NAME: no positive \"num_heads\" in $cfg" >&2
        return 1
    fi
    echo "$heads"
}

wl_find_wanstudio() {
    local here="$1"
    if [ -n "${WANSTUDIO:-}" ]; then echo "$WANSTUDIO"; return; fi
    # installed: <prefix>/share/wanstudio/examples -> <prefix>/bin; source tree: scripts/examples -> build/app
    for c in "$here/../../../bin/wanstudio" "$here/../../build/app/wanstudio"; do
        if [ -x "$c" ]; then (cd "$(dirname "$c")" && echo "$PWD/wanstudio"); return; fi
    done
    if command -v wanstudio >/dev/null 2>&1; then command -v wanstudio; return; fi
    echo "wanstudio"  # not found: fine for --dry-run, reported before a real launch
}

# Builds the array MPIRUN_CMD: mpirun and its flags, up to (not including) the wanstudio binary.
wl_mpirun_cmd() {
    MPIRUN_CMD=("${MPIRUN:-mpirun}" -np "$NUM_GPUS" --bind-to none)
    if [ "$(id -u)" -eq 0 ]; then MPIRUN_CMD+=(--allow-run-as-root); fi
    local v
    for v in CUDA_VISIBLE_DEVICES OMP_NUM_THREADS WAN_LOG DISPLAY WAYLAND_DISPLAY XAUTHORITY XDG_RUNTIME_DIR QT_QPA_PLATFORM; do
        if [ -n "${!v+x}" ]; then MPIRUN_CMD+=(-x "$v"); fi
    done
    for v in $(compgen -e | grep '^NCCL_' || true); do MPIRUN_CMD+=(-x "$v"); done
    if [ -n "${MPIRUN_FLAGS:-}" ]; then
        # shellcheck disable=SC2206  # split on spaces on purpose
        MPIRUN_CMD+=($MPIRUN_FLAGS)
    fi
}

wl_quote() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; echo "${out% }"; }

# wl_check_then_launch LAYOUT_OPTIONS...: `wanstudio --check` with the layout (and EXTRA minus the job
# options), then wanstudio with the layout and EXTRA if the check passed.
wl_check_then_launch() {
    local here exe
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    exe="$(wl_find_wanstudio "$here")"
    wl_mpirun_cmd
    local check_extra=() skip=0 a
    for a in "${EXTRA[@]+"${EXTRA[@]}"}"; do
        if [ $skip -eq 1 ]; then skip=0; continue; fi
        case "$a" in
            --prompt|--batch) skip=1 ;;
            --prompt=*|--batch=*) ;;
            *) check_extra+=("$a") ;;
        esac
    done
    local check=("${MPIRUN_CMD[@]}" "$exe" --check "$@" "${check_extra[@]+"${check_extra[@]}"}")
    local launch=("${MPIRUN_CMD[@]}" "$exe" "$@" "${EXTRA[@]+"${EXTRA[@]}"}")
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "check:  $(wl_quote "${check[@]}")"
        echo "launch: $(wl_quote "${launch[@]}")"
        return 0
    fi
    if ! command -v "$exe" >/dev/null 2>&1; then
        echo "$WL_NAME: wanstudio not found (install the package, build it, or set WANSTUDIO=/path/to/wanstudio)" >&2
        exit 127
    fi
    echo "+ $(wl_quote "${check[@]}")" >&2
    local rc=0
    "${check[@]}" || rc=$?
    if [ $rc -ne 0 ]; then
        echo "$WL_NAME: setup check failed (exit $rc): fix the [FAIL] lines above; not launching" >&2
        exit $rc
    fi
    echo "+ $(wl_quote "${launch[@]}")" >&2
    exec "${launch[@]}"
}
