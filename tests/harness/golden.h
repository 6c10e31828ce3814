// Golden test harness: finds the golden directory, lists cases of a kind, loads their tensors and JSON,
// reads the tolerances, and compares tensors reporting the worst element.
// The directory comes from WAN_GOLDEN_DIR (the caller's value wins), default tests/data/golden.
#pragma once

#include "core/core.h"
#include "io/io.h"

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace wan::test {

/// The golden directory (WAN_GOLDEN_DIR, else <source>/tests/data/golden).
std::string golden_dir();
/// `<golden>/tiny-ckpt`.
std::string tiny_ckpt_dir();
/// The repository's tests/data directory.
std::string test_data_dir();
/// A fresh empty directory under the system temp dir, removed at process exit.
std::string make_temp_dir(const std::string& tag);

/// One golden case: `<name>.json` (what it is) and `<name>.safetensors` (its tensors).
struct GoldenCase {
    std::string name;
    nlohmann::json meta;
    io::TensorStore tensors;
    bool has(const std::string& tensor) const { return tensors.contains(tensor); }
    /// An owned CPU copy of the tensor, in its stored dtype.
    at::Tensor get(const std::string& tensor) const;
};

/// Case names (file stems) in `<golden>/cases` whose name starts with `prefix`, sorted. Never empty:
/// a kind with no case fails the calling test (parity tests never skip).
std::vector<std::string> list_cases(const std::string& prefix);
GoldenCase load_case(const std::string& name);

struct Tolerance {
    double atol = 0;
    double rtol = 0;
};
/// `key` exactly (e.g. "pipeline.final_latent") or its group ("dit"): for the repository's golden cases from
/// tests/harness/measured_tolerances.json (set from the error measured with WAN_TEST_REPORT_ERRORS=1, see there),
/// for another WAN_GOLDEN_DIR from its tolerances.json "recommended".
Tolerance tolerance(const std::string& key);

/// The GenerationRequest of a `pipeline_` case (its "params"), with the case's noise written to
/// `temp_dir`/noise.safetensors and passed as init_noise (upstream draws it on a CUDA generator).
/// The request fields every upstream pipeline case's "params" hold (prompt, size, frames, shift, solver, steps);
/// the guide scale differs in form between Wan2.1 (one) and Wan2.2 (a pair) cases and is left to the caller.
GenerationRequest request_from_params(const nlohmann::json& params);
GenerationRequest pipeline_request(const GoldenCase& c, const std::string& temp_dir);

/// |actual - expected| <= atol + rtol*|expected| everywhere (both converted to float64 on the CPU). With
/// WAN_TEST_REPORT_ERRORS=1 it prints "[measured] <label>: max |err| …" for every comparison.
/// On failure the message names `label`, the shapes, the worst element (index, both values, error), the
/// count of elements out of tolerance and the max abs error.
::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, Tolerance tol,
                                     const std::string& label);
/// Exact equality (integers, token ids, masks), with the first mismatch reported.
::testing::AssertionResult all_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& label);

}  // namespace wan::test
