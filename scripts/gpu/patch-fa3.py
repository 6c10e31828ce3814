#!/usr/bin/env python3
"""Makes flash-attention's hopper launch template compile with V_colmajor = true.

flash-attention never instantiates its e4m3 kernel for a column-major V (its dispatcher switches the case off),
and the launch template no longer compiles for it: the appended-V stride argument is built in the row-major
form while its type follows V's layout, and two more sites assume a row-major V's stride type. WanStudio
instantiates that kernel (engine/dit/cuda/flash3_fwd_e4m3_vcol.cu, Note [FP8 attention]); the sites
(EDITS) are code that kernel never runs. Idempotent: a patched site is left as it is.
Usage: patch-fa3.py HOPPER_DIR
"""
import pathlib
import sys

MARK = "WanStudio V_colmajor"

# (file, unique substring of the line, replacement of that substring). Each site is dead code in WanStudio's
# instantiations (no appended K/V, no Qv, no paged KV), but must type-check with a column-major V's stride type.
EDITS = [
    # The appended V's stride was built in the row-major form; appending is asserted off with V_colmajor.
    ("flash_fwd_launch_template.h",
     "{params.vnew_row_stride, _1{}, params.vnew_head_stride, !is_varlen_k_new ? params.vnew_batch_stride : 0}",
     "v_strides /* " + MARK + ": appended V unused */"),
    # Qv's stride is Q's type, not V's.
    ("mainloop_fwd_sm90_tma_gmma_ws.hpp", "        StrideV const stride_Qv;",
     "        StrideQK const stride_Qv;  // " + MARK),
    # The paged-KV manager (unused with TMA and no page table) takes row-major strides for V.
    ("mainloop_fwd_sm90_tma_gmma_ws.hpp", "params.ptr_V, params.headdim_v, params.stride_V,\n            params.page_size_divmod",
     "params.ptr_V, params.headdim_v, cute::conditional_return<!V_colmajor>(params.stride_V, params.stride_K) /* "
     + MARK + " */,\n            params.page_size_divmod"),
]


def main() -> int:
    hopper = pathlib.Path(sys.argv[1])
    for name, old, new in EDITS:
        path = hopper / name
        text = path.read_text()
        if old not in text:
            if new in text:
                continue  # patched before
            print(f"patch-fa3: {path} no longer holds: {old}", file=sys.stderr)
            return 1
        path.write_text(text.replace(old, new))  # every occurrence (the paged-KV manager is built in two places)
    return 0


if __name__ == "__main__":
    sys.exit(main())
