// wan-bench: Qt-free benchmark of WanStudio's models at real configurations with random weights.
// Prints seconds, achieved TFLOP/s (FLOPs counted as docs/PERFORMANCE.md says) and peak GPU memory; writes
// JSON lines with --json FILE. Speed is measured here, never in tests.
//
//   wan-bench dit --model 1.3B --size 832*480 --frames 81 [--layers N] [--runs 3]
//   wan-bench dit --model 14B --layers 4 --size 1280*720 --frames 81
//   wan-bench all --json results.jsonl
#include "bench_util.h"

#include "core/core.h"
#include "dit/dit.h"
#include "io/io.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

using wan::strfmt;

struct Args {
    std::string command;
    std::map<std::string, std::string> opts;
    std::string get(const std::string& k, const std::string& def) const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second;
    }
    int get_int(const std::string& k, int def) const { return opts.count(k) ? std::stoi(opts.at(k)) : def; }
};

wan::io::WanConfig model_config(const std::string& name) {
    wan::io::WanConfig c;  // defaults = 1.3B
    if (name == "14B") {
        c.dim = 5120;
        c.ffn_dim = 13824;
        c.num_heads = 40;
        c.num_layers = 40;
    } else {
        WAN_CHECK(name == "1.3B", "--model %s: expected 1.3B or 14B", name.c_str());
    }
    return c;
}

void parse_size(const std::string& s, int& w, int& h) {
    auto star = s.find('*');
    WAN_CHECK(star != std::string::npos, "--size %s: expected W*H", s.c_str());
    w = std::stoi(s.substr(0, star));
    h = std::stoi(s.substr(star + 1));
}

/// FLOPs of one DiT forward (batch 1), see docs/PERFORMANCE.md: per block, the q/k/v/o and cross-attention
/// q/o projections and the FFN (2·N·D·(6D + 2F)), self-attention (4·N²·D) and cross-attention over 512 text
/// rows (4·N·512·D). Cross-attention K/V projections are cached per prompt and not counted.
double dit_flops(const wan::io::WanConfig& c, int64_t layers, int64_t n) {
    const double D = static_cast<double>(c.dim), F = static_cast<double>(c.ffn_dim), N = static_cast<double>(n);
    const double per_block = 2 * N * D * (6 * D + 2 * F) + 4 * N * N * D + 4 * N * static_cast<double>(c.text_len) * D;
    return per_block * static_cast<double>(layers);
}

std::vector<nlohmann::json> g_results;

void record(nlohmann::json j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    g_results.push_back(std::move(j));
}

void bench_dit(const Args& a, c10::Device device) {
    const std::string model = a.get("model", "1.3B");
    wan::io::WanConfig cfg = model_config(model);
    int w = 0, h = 0;
    parse_size(a.get("size", model == "14B" ? "1280*720" : "832*480"), w, h);
    const int frames = a.get_int("frames", 81);
    const int layers = a.get_int("layers", static_cast<int>(cfg.num_layers));
    const int runs = a.get_int("runs", 3);
    const int64_t T = (frames - 1) / 4 + 1, lh = h / 8, lw = w / 8;
    const int64_t n = T * (lh / 2) * (lw / 2);

    wan::bench::reset_peak(device);
    wan::dit::ModelOptions opt;
    opt.device = device;
    auto m = wan::dit::WanModel::random(cfg, opt, 0, layers);
    const double weights_gb = wan::bench::peak_gb(device);
    at::Tensor x = at::randn({cfg.in_dim, T, lh, lw}, at::TensorOptions().device(device));
    at::Tensor ctx = at::randn({120, cfg.text_dim}, at::TensorOptions().device(device)).to(at::kBFloat16);
    at::Tensor t = at::scalar_tensor(999.0, at::kDouble);
    wan::dit::CrossAttentionCache cache;
    wan::bench::reset_peak(device);
    auto timing = wan::bench::time_it(device, 1, runs, [&] { (void)m.forward(x, t, ctx, n, &cache); });
    const double flops = dit_flops(cfg, layers, n);
    record({{"bench", "dit"}, {"model", model}, {"layers", layers}, {"size", strfmt("%d*%d", w, h)}, {"frames", frames},
            {"tokens", n}, {"seconds", timing.mean_s}, {"min_seconds", timing.min_s}, {"runs", runs},
            {"tflops", flops / timing.mean_s / 1e12}, {"weights_gb", weights_gb},
            {"peak_gb", wan::bench::peak_gb(device)}, {"device", wan::bench::device_name(device)}});
}

void bench_all(const Args& a, c10::Device device) {
    Args d = a;
    d.opts = {{"model", "1.3B"}, {"size", "832*480"}};
    bench_dit(d, device);
    d.opts = {{"model", "14B"}, {"layers", "4"}, {"size", "1280*720"}};
    bench_dit(d, device);
    d.opts = {{"model", "14B"}, {"layers", "4"}, {"size", "832*480"}};
    bench_dit(d, device);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (argc < 2) {
        std::fprintf(stderr, "usage: wan-bench dit|all [--model 1.3B|14B] [--size W*H] [--frames N] [--layers N] "
                             "[--runs N] [--device cuda|cpu] [--json FILE]\n");
        return 2;
    }
    a.command = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k.rfind("--", 0) == 0) k = k.substr(2);
        a.opts[k] = argv[i + 1];
    }
    try {
        c10::InferenceMode guard;
        const std::string dev = a.get("device", at::hasCUDA() ? "cuda" : "cpu");
        c10::Device device = dev == "cuda" ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
        if (a.command == "dit") bench_dit(a, device);
        else if (a.command == "all") bench_all(a, device);
        else WAN_THROW("unknown benchmark '%s'", a.command.c_str());
        if (a.opts.count("json")) {
            std::ofstream f(a.opts.at("json"), std::ios::app);
            for (const auto& j : g_results) f << j.dump() << "\n";
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wan-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
