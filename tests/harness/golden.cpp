#include "golden.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unistd.h>

namespace wan::test {

std::string test_data_dir() { return std::string(WAN_SOURCE_DIR) + "/tests/data"; }

std::string golden_dir() {
    const char* env = std::getenv("WAN_GOLDEN_DIR");
    if (env && *env) return env;
    return test_data_dir() + "/golden";
}

std::string tiny_ckpt_dir() { return golden_dir() + "/tiny-ckpt"; }

namespace {
std::vector<std::string>& temp_dirs() {
    static std::vector<std::string> dirs;
    return dirs;
}
void remove_temp_dirs() {
    for (const auto& d : temp_dirs()) {
        std::string cmd = "rm -rf '" + d + "'";
        if (std::system(cmd.c_str()) != 0) { /* best effort */ }
    }
}
}  // namespace

std::string make_temp_dir(const std::string& tag) {
    static std::once_flag once;
    std::call_once(once, [] {
        temp_dirs();  // construct before registering, so it is destroyed after the handler runs
        std::atexit(remove_temp_dirs);
    });
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/wan-test-" + tag + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    char* d = ::mkdtemp(buf.data());
    WAN_CHECK(d != nullptr, "cannot create a temporary directory from %s", templ.c_str());
    temp_dirs().push_back(d);
    return d;
}

at::Tensor GoldenCase::get(const std::string& tensor) const {
    WAN_CHECK(tensors.contains(tensor), "golden case '%s' has no tensor '%s'", name.c_str(), tensor.c_str());
    return tensors.load(tensor);
}

GenerationRequest request_from_params(const nlohmann::json& p) {
    GenerationRequest req;
    req.prompt = p.at("prompt").get<std::string>();
    req.negative_prompt = p.at("n_prompt").get<std::string>();  // "" → the default, as upstream
    req.width = p.at("size").at(0).get<int>();
    req.height = p.at("size").at(1).get<int>();
    req.frame_num = p.at("frame_num").get<int>();
    req.sample_shift = p.at("shift").get<double>();
    req.solver = p.at("sample_solver").get<std::string>();
    req.sample_steps = p.at("sampling_steps").get<int>();
    return req;
}

GenerationRequest pipeline_request(const GoldenCase& c, const std::string& temp_dir) {
    GenerationRequest req = request_from_params(c.meta.at("params"));
    req.guide_scale = c.meta.at("params").at("guide_scale").get<double>();
    req.init_noise = temp_dir + "/noise.safetensors";
    io::save_safetensors(req.init_noise, {{"noise", c.get("noise")}});
    return req;
}

std::vector<std::string> list_cases(const std::string& prefix) {
    const std::string dir = golden_dir() + "/cases";
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            const std::string ext = ".safetensors";
            if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0 &&
                n.compare(0, prefix.size(), prefix) == 0) {
                out.push_back(n.substr(0, n.size() - ext.size()));
            }
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    EXPECT_FALSE(out.empty()) << "no golden case with prefix '" << prefix << "' in " << dir
                              << " (parity tests never skip: set WAN_GOLDEN_DIR to a directory of cases)";
    return out;
}

GoldenCase load_case(const std::string& name) {
    const std::string base = golden_dir() + "/cases/" + name;
    GoldenCase c;
    c.name = name;
    std::ifstream js(base + ".json");
    if (js) {
        c.meta = nlohmann::json::parse(js);
    }
    c.tensors = io::TensorStore::open_safetensors(base + ".safetensors");
    return c;
}

namespace {
nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    WAN_CHECK(bool(f), "cannot read %s", path.c_str());
    return nlohmann::json::parse(f);
}

// `key` exactly, else its group ("pipeline.latents" -> "pipeline"); null when neither is in `table`.
const nlohmann::json* lookup(const nlohmann::json& table, const std::string& key) {
    std::string k = key;
    while (true) {
        if (table.contains(k)) return &table[k];
        auto dot = k.find_last_of('.');
        if (dot == std::string::npos) return nullptr;
        k = k.substr(0, dot);
    }
}
}  // namespace

Tolerance tolerance(const std::string& key) {
    // The repository's golden cases are checked against tolerances set from the error this implementation
    // measures on them (tests/harness/measured_tolerances.json, with its basis); another golden directory
    // (WAN_GOLDEN_DIR) brings its own "recommended" tolerances.
    const bool own_cases = golden_dir() == test_data_dir() + "/golden";
    static const nlohmann::json measured = read_json(std::string(WAN_SOURCE_DIR) + "/tests/harness/measured_tolerances.json");
    static const nlohmann::json golden = read_json(golden_dir() + "/tolerances.json");
    const nlohmann::json& table = own_cases ? measured.at("tolerances") : golden.at("recommended");
    const nlohmann::json* t = lookup(table, key);
    WAN_CHECK(t != nullptr, "no tolerance for '%s' in %s", key.c_str(),
              own_cases ? "tests/harness/measured_tolerances.json" : (golden_dir() + "/tolerances.json").c_str());
    return {t->at("atol").get<double>(), t->at("rtol").get<double>()};
}

namespace {
bool report_errors() {
    const char* env = std::getenv("WAN_TEST_REPORT_ERRORS");
    return env != nullptr && *env != '\0' && std::string(env) != "0";
}

std::string index_string(int64_t flat, at::IntArrayRef sizes) {
    std::vector<int64_t> idx(sizes.size());
    for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
        idx[d] = sizes[d] ? flat % sizes[d] : 0;
        flat = sizes[d] ? flat / sizes[d] : 0;
    }
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < idx.size(); ++i) os << (i ? "," : "") << idx[i];
    os << "]";
    return os.str();
}
}  // namespace

::testing::AssertionResult all_close(const at::Tensor& actual, const at::Tensor& expected, Tolerance tol,
                                     const std::string& label) {
    if (actual.sizes() != expected.sizes()) {
        std::ostringstream os;
        os << label << ": shape " << actual.sizes() << " != expected " << expected.sizes();
        return ::testing::AssertionFailure() << os.str();
    }
    at::Tensor a = actual.detach().to(at::kCPU).to(at::kDouble).contiguous();
    at::Tensor e = expected.detach().to(at::kCPU).to(at::kDouble).contiguous();
    if (a.numel() == 0) return ::testing::AssertionSuccess();
    at::Tensor err = (a - e).abs();
    at::Tensor allowed = tol.atol + tol.rtol * e.abs();
    at::Tensor excess = err - allowed;
    // NaN in either tensor counts as a failure unless both are NaN at that place.
    at::Tensor nan_bad = at::logical_xor(a.isnan(), e.isnan());
    excess = at::where(nan_bad, at::full_like(excess, INFINITY), at::nan_to_num(excess, -1.0));
    int64_t worst = excess.flatten().argmax().item<int64_t>();
    double worst_excess = excess.flatten()[worst].item<double>();
    int64_t bad = (excess > 0).sum().item<int64_t>();
    double max_abs = at::nan_to_num(err, INFINITY).max().item<double>();
    if (report_errors()) {
        // WAN_TEST_REPORT_ERRORS=1: how tests/harness/measured_tolerances.json was measured.
        std::printf("[measured] %s: max |err| %.9g (allowed atol %g, rtol %g)\n", label.c_str(), max_abs, tol.atol,
                    tol.rtol);
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    std::ostringstream os;
    os.precision(9);
    os << label << ": " << bad << " of " << a.numel() << " elements out of tolerance (atol " << tol.atol << ", rtol "
       << tol.rtol << "); worst at " << index_string(worst, a.sizes()) << ": got " << a.flatten()[worst].item<double>()
       << ", expected " << e.flatten()[worst].item<double>() << ", |err| " << err.flatten()[worst].item<double>()
       << " (excess " << worst_excess << "); max |err| " << max_abs;
    return ::testing::AssertionFailure() << os.str();
}

::testing::AssertionResult all_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& label) {
    if (actual.sizes() != expected.sizes()) {
        std::ostringstream os;
        os << label << ": shape " << actual.sizes() << " != expected " << expected.sizes();
        return ::testing::AssertionFailure() << os.str();
    }
    at::Tensor a = actual.detach().to(at::kCPU).contiguous();
    at::Tensor e = expected.detach().to(at::kCPU).to(a.scalar_type()).contiguous();
    at::Tensor ne = (a != e).flatten();
    int64_t bad = ne.sum().item<int64_t>();
    if (bad == 0) return ::testing::AssertionSuccess();
    int64_t first = ne.to(at::kByte).argmax().item<int64_t>();
    std::ostringstream os;
    os << label << ": " << bad << " of " << a.numel() << " elements differ; first at " << index_string(first, a.sizes())
       << ": got " << a.flatten()[first].item<double>() << ", expected " << e.flatten()[first].item<double>();
    return ::testing::AssertionFailure() << os.str();
}

}  // namespace wan::test
