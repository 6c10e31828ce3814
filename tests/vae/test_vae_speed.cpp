// The decode's speed switches (VAESpeedOptions, Note [VAE speed switches]) and its stage clock on the tiny
// checkpoint: every switch, alone and together, in both layouts, computes the plain decode (f32: up to
// summation order; bf16: within bf16 rounding), the encoder too; the stage clock charges every kind of work.
// subpixel_upsample also matches the golden decode (and its module outputs) as the plain path does.
// The CUDA kernel of fused_norm is not built here: on the CPU that switch takes the ATen path; the GPU run of
// `wan-bench vae --fused-norm 1 --compare-base 1` compares it with the plain bf16 decode.
// The memory switch tail_frames (Note [Decode tail]) computes the whole chunk's video with every other switch
// and lowers the peak of live tensor bytes (counted by wrapping LibTorch's CPU allocator).
#include "error_of.h"
#include "golden.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <mutex>
#include <unordered_map>

namespace {

using wan::vae::DecodeCallbacks;
using wan::vae::VAEOptions;
using wan::vae::VAESpeedOptions;
using wan::vae::WanVAE;

const wan::io::TensorStore& store() {
    static const wan::io::TensorStore s = wan::io::TensorStore::open_pth(wan::test::tiny_ckpt_dir() + "/Wan2.1_VAE.pth");
    return s;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Variant {
    const char* name;
    VAESpeedOptions speed;
};

std::vector<Variant> variants() {
    auto with = [](auto set) {
        VAESpeedOptions s;
        set(s);
        return s;
    };
    // fused_norm alone is BufferAndNormSwitchesKeepTheArithmetic's. "all" is last (TiledDecodeWithTheSwitches,
    // ChunksOfSeveralLatentFramesEqualOneFrameChunks); with fold_time the phase conv is a conv2d.
    return {{"fold_time", with([](VAESpeedOptions& s) { s.fold_time = true; })},
            {"cache_buffer", with([](VAESpeedOptions& s) { s.cache_buffer = true; })},
            {"cache_buffer+fused_norm+pad_head", with([](VAESpeedOptions& s) {
                 s.cache_buffer = s.fused_norm = s.pad_head = true;
             })},
            {"subpixel_upsample", with([](VAESpeedOptions& s) { s.subpixel_upsample = true; })},
            {"cache_buffer+fused_norm+subpixel_upsample", with([](VAESpeedOptions& s) {
                 s.cache_buffer = s.fused_norm = s.subpixel_upsample = true;
             })},
            {"all", with([](VAESpeedOptions& s) {
                 s.fold_time = s.cache_buffer = s.fused_norm = s.pad_head = s.subpixel_upsample = true;
             })}};
}

VAEOptions options(at::ScalarType dtype, bool channels_last, VAESpeedOptions speed = {}) {
    VAEOptions o;
    o.dtype = dtype;
    o.channels_last = channels_last;
    o.speed = speed;
    return o;
}

// 3 latent frames: the first chunk (1 frame, "Rep"), the temporal up-convolution without and with history, and
// chunks of 1, 2 and 4 frames at the cached sites; a 4×3 latent so that rows and columns differ.
constexpr int64_t kFrames = 3;
at::Tensor latent() {
    at::manual_seed(21);
    return at::randn({16, kFrames, 4, 3});
}

TEST(VaeSpeed, EverySwitchEqualsThePlainDecodeInF32) {
    const at::Tensor z = latent();
    for (bool cl : {false, true}) {
        const at::Tensor ref = WanVAE(store(), options(at::kFloat, cl)).decode_unclamped(z);
        for (const Variant& v : variants()) {
            const at::Tensor y = WanVAE(store(), options(at::kFloat, cl, v.speed)).decode_unclamped(z);
            ASSERT_EQ(y.sizes(), ref.sizes()) << v.name;
            const double err = max_abs_diff(y, ref);
            std::cout << v.name << (cl ? " channels-last" : "") << ": max abs " << err << "\n";
            EXPECT_LT(err, 1e-5) << v.name << (cl ? " channels-last" : "");  // other summation orders only
        }
    }
}

TEST(VaeSpeed, BufferAndNormSwitchesKeepTheArithmetic) {
    // On the CPU fused_norm runs the same ATen ops (into the buffer when there is one): bit for bit the plain
    // decode. With cache_buffer the conv reads the same values from a buffer it did not get from a cat, which
    // LibTorch's CPU conv3d may sum in another order.
    const at::Tensor z = latent();
    VAESpeedOptions norm;
    norm.fused_norm = true;
    VAESpeedOptions both = norm;
    both.cache_buffer = true;
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
        const at::Tensor ref = WanVAE(store(), options(dt, true)).decode_unclamped(z);
        EXPECT_TRUE(at::equal(WanVAE(store(), options(dt, true, norm)).decode_unclamped(z), ref)) << c10::toString(dt);
        const double err = max_abs_diff(WanVAE(store(), options(dt, true, both)).decode_unclamped(z), ref);
        std::cout << "cache_buffer+fused_norm " << c10::toString(dt) << ": max abs " << err << "\n";
        EXPECT_LT(err, dt == at::kFloat ? 1e-5 : 1e-2);
    }
}

TEST(VaeSpeed, EverySwitchIsWithinBf16RoundingOfThePlainBf16Decode) {
    const at::Tensor z = latent();
    const at::Tensor f32 = WanVAE(store(), options(at::kFloat, true)).decode_unclamped(z);
    const at::Tensor ref = WanVAE(store(), options(at::kBFloat16, true)).decode_unclamped(z);
    const double ref_err = max_abs_diff(ref, f32);
    std::cout << "plain bf16 vs f32: max abs " << ref_err << "\n";
    for (const Variant& v : variants()) {
        const at::Tensor y = WanVAE(store(), options(at::kBFloat16, true, v.speed)).decode_unclamped(z);
        const double err = max_abs_diff(y, ref), err32 = max_abs_diff(y, f32);
        std::cout << v.name << " bf16: vs plain bf16 " << err << ", vs f32 " << err32 << "\n";
        // Other summation orders in the convs move single bf16 roundings: no further from f32 than the plain
        // bf16 decode is (with slack for where the roundings fall).
        EXPECT_LT(err32, 2 * ref_err + 1e-3) << v.name;
        EXPECT_LT(err, 2 * ref_err + 1e-3) << v.name;
    }
}

// Note [Sub-pixel upsample] on the golden cases: the video and every captured module output (the upsamples'
// included) within the golden tolerance, as the plain decode (GoldenVaeDecode), and within 1e-5 of the plain
// decode: the phase convs sum the same products in another order (the merged taps rounded once from exact sums),
// and such f32 reorderings stay near the decode's own f32 error, 1.6e-6 against float64 (golden README §3),
// through the ~40 layers; 1e-5 is the bound of the other switches here.
TEST(VaeSpeed, SubpixelUpsampleMatchesTheGoldenAndThePlainDecode) {
    for (bool cl : {false, true}) {
        SCOPED_TRACE(cl ? "channels-last" : "default layout");
        VAESpeedOptions s;
        s.subpixel_upsample = true;
        const WanVAE plain(store(), options(at::kFloat, cl)), subpixel(store(), options(at::kFloat, cl, s));
        wan::test::for_each_golden_case("vae_decode", [&](const auto& c, auto& capture, wan::test::Tolerance tol) {
            const at::Tensor z = c.get("z");
            const at::Tensor y = subpixel.decode_unclamped(z, capture.callbacks());
            wan::test::expect_matches(c, "video_unclamped", y, tol);
            const double err = max_abs_diff(y, plain.decode_unclamped(z));
            std::cout << c.name << (cl ? " channels-last" : "") << ": sub-pixel vs plain max abs " << err << "\n";
            EXPECT_LT(err, 1e-5) << c.name;
        });
    }
    // bf16: the merged taps round once to bf16 where the plain path rounds each tap; within bf16 rounding of the
    // plain bf16 decode on a golden latent (the random latents: EverySwitchIsWithinBf16RoundingOfThePlainBf16Decode).
    const wan::test::GoldenCase c = wan::test::load_case(wan::test::list_cases("vae_decode_").back());
    VAESpeedOptions s;
    s.subpixel_upsample = s.cache_buffer = s.fused_norm = true;
    const at::Tensor z = c.get("z");
    const at::Tensor ref = WanVAE(store(), options(at::kBFloat16, true)).decode_unclamped(z);
    const at::Tensor y = WanVAE(store(), options(at::kBFloat16, true, s)).decode_unclamped(z);
    const double ref_err = max_abs_diff(ref, c.get("video_unclamped")), err = max_abs_diff(y, c.get("video_unclamped"));
    std::cout << c.name << " bf16: sub-pixel vs golden " << err << ", plain bf16 vs golden " << ref_err
              << ", sub-pixel vs plain bf16 " << max_abs_diff(y, ref) << "\n";
    EXPECT_LT(err, 2 * ref_err + 1e-3);
    EXPECT_LT(max_abs_diff(y, ref), 2 * ref_err + 1e-3);
}

TEST(VaeSpeed, FoldedEncoderEqualsThePlainEncoder) {
    at::manual_seed(4);
    const at::Tensor video = at::rand({3, 5, 16, 24}) * 2 - 1;  // chunks of 1 and 4 frames
    for (bool cl : {false, true}) {
        const at::Tensor ref = WanVAE(store(), options(at::kFloat, cl)).encode(video);
        for (const Variant& v : variants()) {
            const double err = max_abs_diff(WanVAE(store(), options(at::kFloat, cl, v.speed)).encode(video), ref);
            EXPECT_LT(err, 1e-5) << v.name << (cl ? " channels-last" : "");
        }
    }
}

TEST(VaeSpeed, TiledDecodeWithTheSwitches) {
    const at::Tensor z = latent();
    VAEOptions plain = options(at::kFloat, true);
    plain.tiling = {true, 4, 1};
    VAEOptions fast = plain;
    fast.speed = variants().back().speed;
    EXPECT_LT(max_abs_diff(WanVAE(store(), fast).decode_unclamped(z), WanVAE(store(), plain).decode_unclamped(z)), 1e-5);
}

// Note [Decode chunks]: n latent frames per decoder call after the first compute the one-frame-per-call video.
TEST(VaeSpeed, ChunksOfSeveralLatentFramesEqualOneFrameChunks) {
    at::manual_seed(22);
    const at::Tensor z = at::randn({16, 6, 3, 2});  // chunks [0] [1 2] [3 4] [5] with 2; [0] [1 2 3] [4 5] with 3
    for (bool cl : {false, true}) {
        const at::Tensor ref = WanVAE(store(), options(at::kFloat, cl)).decode_unclamped(z);
        for (int64_t n : {2, 3, 8}) {
            VAESpeedOptions s;
            s.chunk_frames = n;
            std::vector<int64_t> progress;
            DecodeCallbacks cb;
            cb.progress = [&](int64_t done, int64_t total) {
                EXPECT_EQ(total, 6);
                progress.push_back(done);
            };
            const at::Tensor y = WanVAE(store(), options(at::kFloat, cl, s)).decode_unclamped(z, cb);
            ASSERT_EQ(y.sizes(), ref.sizes());
            const double err = max_abs_diff(y, ref);
            std::cout << "chunks of " << n << (cl ? " channels-last" : "") << ": max abs " << err << "\n";
            EXPECT_LT(err, 1e-5);
            const std::vector<int64_t> want = n == 2 ? std::vector<int64_t>{1, 3, 5, 6}
                                                     : n == 3 ? std::vector<int64_t>{1, 4, 6} : std::vector<int64_t>{1, 6};
            EXPECT_EQ(progress, want) << "chunks of " << n;
        }
    }
    // With every other switch, in bf16: within bf16 rounding of the plain bf16 decode.
    VAESpeedOptions all = variants().back().speed;
    all.chunk_frames = 4;
    const at::Tensor ref = WanVAE(store(), options(at::kBFloat16, true)).decode_unclamped(z);
    const at::Tensor f32 = WanVAE(store(), options(at::kFloat, true)).decode_unclamped(z);
    const double err = max_abs_diff(WanVAE(store(), options(at::kBFloat16, true, all)).decode_unclamped(z), f32);
    std::cout << "all switches, chunks of 4, bf16 vs f32: " << err << " (plain bf16 " << max_abs_diff(ref, f32) << ")\n";
    EXPECT_LT(err, 2 * max_abs_diff(ref, f32) + 1e-3);

    VAESpeedOptions bad;
    bad.chunk_frames = 0;
    EXPECT_NE(wan::test::error_of([&] { WanVAE(store(), options(at::kFloat, false, bad)); })
                  .find("speed.chunk_frames must be >= 1 latent frame, got 0"),
              std::string::npos);
}

TEST(VaeSpeed, StageClockChargesEveryKindOfWork) {
    const at::Tensor z = latent();
    for (const int which : {0, 1, 2}) {  // plain, fold_time, subpixel_upsample (its conv: "conv 1x3x3 (upsample)")
        VAESpeedOptions s;
        s.fold_time = which == 1;
        s.subpixel_upsample = which == 2;
        const WanVAE vae(store(), options(at::kFloat, true, s));
        wan::vae::StageTimes times;
        DecodeCallbacks cb;
        cb.stage_times = &times;
        const auto t0 = std::chrono::steady_clock::now();
        const at::Tensor y = vae.decode(z, cb);
        vae.decode(z, cb);
        const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_TRUE(at::equal(y, vae.decode(z)));  // measuring changes nothing
        EXPECT_EQ(times.decodes, 2);
        const std::string table = times.table();
        std::cout << table;
        auto find = [&](const std::string& stage) {
            for (const auto& e : times.entries) {
                if (e.stage == stage) return e;
            }
            ADD_FAILURE() << "no stage '" << stage << "' in\n" << table;
            return wan::vae::StageTimes::Entry{};
        };
        // The decoder of the Wan VAE per latent frame: 3×3×3 convs: conv1, 2 + 4 resblocks at 1/8 (middle,
        // stage 0), 3 per later stage, 2 each, and the head at 1/1.
        EXPECT_EQ(find("conv 3x3x3 1/8").calls, 2 * kFrames * (1 + 2 * 2 + 3 * 2));
        EXPECT_EQ(find("conv 3x3x3 1/1").calls, 2 * kFrames * (3 * 2 + 1));
        EXPECT_EQ(find("attention block 1/8").calls, 2 * kFrames);
        EXPECT_EQ(find("conv 3x1x1 (time) 1/8").calls, 2 * (kFrames - 1));  // not on the first ("Rep") chunk
        EXPECT_EQ(find("conv 1x3x3 (upsample) 1/4").calls, 2 * kFrames);
        EXPECT_EQ(find("conv 1x3x3 (upsample) 1/1").calls, 2 * kFrames);
        EXPECT_GT(find("upsample copy 1/1").calls, 0);
        EXPECT_GT(find("rms norm 1/2").calls, 0);
        EXPECT_GT(find("causal input (cat/fold) 1/1").calls, 0);
        EXPECT_GT(find("output copy 1/1").calls, 0);
        EXPECT_GT(times.total_ms(), 0.0);
        EXPECT_LE(times.total_ms(), wall_ms);
        EXPECT_NE(table.find("(2 decodes)"), std::string::npos);
        EXPECT_NE(table.find("by kind:"), std::string::npos);  // the levels summed
        EXPECT_NE(table.find(" conv 3x3x3 "), std::string::npos);
    }
}

}  // namespace

namespace {

// ---- Note [Decode tail] ----------------------------------------------------------------------------------

std::vector<Variant> plain_and_variants() {
    std::vector<Variant> all{{"plain", {}}};
    for (const Variant& v : variants()) all.push_back(v);
    return all;
}

// f32: the tail in groups of 1 and 3 output frames (3 leaves a group of 1 of a 4-frame chunk, and splits an
// 8-frame chunk 3 + 3 + 2) against the whole chunk, with chunks of 1 and 2 latent frames, every switch
// (channels-last; the default layout with none and with all). The same layers see the same values; only a convolution over fewer frames may order its sums
// differently (LibTorch's CPU kernels block by the output size), hence a bound at float rounding, not equality.
TEST(VaeSpeed, TailFramesEqualTheWholeChunk) {
    at::manual_seed(23);
    const at::Tensor z = at::randn({16, 3, 4, 3});
    double worst = 0;
    int equal = 0, runs = 0;
    for (bool cl : {false, true}) {
        for (const Variant& v : plain_and_variants()) {
            // The default layout with the plain path and all switches only (CI time).
            if (!cl && v.name != std::string("plain") && v.name != std::string("all")) continue;
            for (int64_t chunk : {1, 2}) {
                VAESpeedOptions s = v.speed;
                s.chunk_frames = chunk;
                const at::Tensor ref = WanVAE(store(), options(at::kFloat, cl, s)).decode_unclamped(z);
                for (int64_t k : {1, 3}) {
                    s.tail_frames = k;
                    const at::Tensor y = WanVAE(store(), options(at::kFloat, cl, s)).decode_unclamped(z);
                    ASSERT_EQ(y.sizes(), ref.sizes());
                    const double err = max_abs_diff(y, ref);
                    worst = std::max(worst, err);
                    equal += at::equal(y, ref) ? 1 : 0;
                    ++runs;
                    EXPECT_LT(err, 1e-5) << v.name << (cl ? " channels-last" : "") << ", chunks of " << chunk
                                         << ", tail frames " << k;
                }
            }
        }
    }
    std::cout << "tail frames vs whole chunk, f32: " << equal << " of " << runs << " bit-equal, worst max abs " << worst
              << "\n";
}

// bf16: the same, within bf16 rounding of the whole chunk's decode (a conv over fewer frames may round one sum
// differently, and that step is carried on; bit-equal on the CPU when written).
TEST(VaeSpeed, TailFramesInBf16) {
    at::manual_seed(24);
    const at::Tensor z = at::randn({16, 3, 4, 3});
    const at::Tensor f32 = WanVAE(store(), options(at::kFloat, true)).decode_unclamped(z);
    const at::Tensor plain = WanVAE(store(), options(at::kBFloat16, true)).decode_unclamped(z);
    const double bf16_err = max_abs_diff(plain, f32);
    for (const Variant& v : plain_and_variants()) {
        VAESpeedOptions s = v.speed;
        s.chunk_frames = 2;
        const at::Tensor ref = WanVAE(store(), options(at::kBFloat16, true, s)).decode_unclamped(z);
        s.tail_frames = 1;
        const at::Tensor y = WanVAE(store(), options(at::kBFloat16, true, s)).decode_unclamped(z);
        const double err = max_abs_diff(y, ref);
        std::cout << v.name << " bf16, tail frames 1 vs whole chunk: " << err << (at::equal(y, ref) ? " (equal)" : "")
                  << "; plain bf16 vs f32 " << bf16_err << "\n";
        EXPECT_LT(err, bf16_err + 1e-3) << v.name;
        EXPECT_LT(max_abs_diff(y, f32), 2 * bf16_err + 1e-3) << v.name;
    }
}

// The module outputs the hook sees are the whole chunk's (the groups' outputs joined), so the golden decode's
// intermediates still match call by call, and the hook's calls are the whole chunk's; tiling too.
TEST(VaeSpeed, TailFramesMatchTheGoldenAndItsIntermediates) {
    VAESpeedOptions s;
    s.tail_frames = 1;
    s.subpixel_upsample = s.cache_buffer = true;
    const WanVAE tail(store(), options(at::kFloat, true, s));
    wan::test::for_each_golden_case("vae_decode", [&](const auto& c, auto& capture, wan::test::Tolerance tol) {
        wan::test::expect_matches(c, "video_unclamped", tail.decode_unclamped(c.get("z"), capture.callbacks()), tol);
        wan::test::expect_matches(c, "video", tail.decode(c.get("z")), tol);
    });
    // The same calls, in the same order, with the same shapes and values (f32 rounding) as the whole chunk's.
    const at::Tensor z = latent();
    auto record = [&](const WanVAE& vae) {
        std::vector<std::pair<std::string, at::Tensor>> calls;
        DecodeCallbacks cb;
        cb.on_intermediate = [&](const std::string& name, const at::Tensor& out) { calls.emplace_back(name, out.clone()); };
        (void)vae.decode(z, cb);
        return calls;
    };
    VAESpeedOptions whole = s;
    whole.tail_frames = 0;
    const auto want = record(WanVAE(store(), options(at::kFloat, true, whole)));
    const auto got = record(tail);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].first, want[i].first) << i;
        ASSERT_EQ(got[i].second.sizes(), want[i].second.sizes()) << got[i].first;
        EXPECT_LT(max_abs_diff(got[i].second, want[i].second), 1e-5) << got[i].first;
    }
    VAEOptions tiled = options(at::kFloat, true);
    tiled.tiling = {true, 2, 1};
    const at::Tensor ref = WanVAE(store(), tiled).decode_unclamped(z);
    tiled.speed.tail_frames = 2;
    EXPECT_LT(max_abs_diff(WanVAE(store(), tiled).decode_unclamped(z), ref), 1e-5);

    VAESpeedOptions bad;
    bad.tail_frames = -1;
    EXPECT_NE(wan::test::error_of([&] { WanVAE(store(), options(at::kFloat, false, bad)); })
                  .find("speed.tail_frames must be >= 0 output frames"),
              std::string::npos);
}

/// While installed: LibTorch's CPU allocator wrapped, counting the bytes of live CPU tensors and their peak, twice:
/// all of them, and outside the convolutions (a RecordFunction callback marks the aten::conv* ops; their inputs and
/// outputs count at the op's end, their scratch — the CPU conv3d's im2col columns, 27·Ci values per output pixel —
/// does not: cuDNN's workspace on a GPU is another matter, so the activations are the part to compare).
class CountingCpuAllocator final : public c10::Allocator {
public:
    CountingCpuAllocator() : base_(c10::GetCPUAllocator()) {
        c10::SetCPUAllocator(this, kPriority);
        callback_ = at::addGlobalCallback(
            at::RecordFunctionCallback(
                [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
                    if (is_conv(fn)) ++counters().conv_depth;
                    return nullptr;
                },
                [](const at::RecordFunction& fn, at::ObserverContext*) {
                    if (is_conv(fn) && --counters().conv_depth == 0) raise(counters().peak_outside, counters().live);
                })
                .scopes({at::RecordScope::FUNCTION}));
    }
    ~CountingCpuAllocator() override {
        at::removeCallback(callback_);
        c10::SetCPUAllocator(base_, kPriority);
    }
    CountingCpuAllocator(const CountingCpuAllocator&) = delete;
    CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;

    // The context is the data pointer itself, as raw_allocate (oneDNN's scratch) wants it.
    c10::DataPtr allocate(size_t n) const override {
        c10::DataPtr inner = base_->allocate(n);
        void* data = inner.get();
        const c10::Device device = inner.device();
        Counters& c = counters();
        {
            std::lock_guard<std::mutex> lock(c.mutex);
            c.blocks.emplace(data, Block{std::move(inner), static_cast<int64_t>(n)});
        }
        const int64_t now = c.live += static_cast<int64_t>(n);
        raise(c.peak, now);
        if (c.conv_depth == 0) raise(c.peak_outside, now);
        return {data, data, &release, device};
    }
    c10::DeleterFnPtr raw_deleter() const override { return &release; }
    /// Restarts both peaks from what is live now; returns that.
    int64_t reset_peak() {
        Counters& c = counters();
        c.peak = c.peak_outside = c.live.load();
        return c.peak;
    }
    int64_t peak() const { return counters().peak; }
    int64_t peak_outside_convs() const { return counters().peak_outside; }

private:
    static constexpr uint8_t kPriority = 200;  // above LibTorch's default CPU allocator
    struct Block {
        c10::DataPtr inner;
        int64_t bytes;
    };
    struct Counters {
        std::atomic<int64_t> live{0}, peak{0}, peak_outside{0};
        std::atomic<int> conv_depth{0};
        std::mutex mutex;
        std::unordered_map<void*, Block> blocks;
    };
    // Blocks freed after the allocator is gone still count down: the counters live for the process.
    static Counters& counters() {
        static Counters* c = new Counters();
        return *c;
    }
    static bool is_conv(const at::RecordFunction& fn) { return std::strncmp(fn.name(), "aten::conv", 10) == 0; }
    static void raise(std::atomic<int64_t>& peak, int64_t now) {
        int64_t seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
    }
    static void release(void* data) {
        Counters& c = counters();
        Block block;
        {
            std::lock_guard<std::mutex> lock(c.mutex);
            auto it = c.blocks.find(data);
            if (it == c.blocks.end()) {  // oneDNN frees through the current allocator what it had before
                c10::GetDefaultCPUAllocator()->raw_deleter()(data);
                return;
            }
            block = std::move(it->second);
            c.blocks.erase(it);
        }
        c.live -= block.bytes;
    }  // block.inner frees through the base allocator's deleter
    c10::Allocator* base_;
    at::CallbackHandle callback_ = 0;
};

struct Peaks {
    int64_t all = 0, outside_convs = 0;
};

/// The peaks of live tensor bytes during vae.decode(z), above what was live before (the result included).
Peaks decode_peak_bytes(const WanVAE& vae, const at::Tensor& z) {
    CountingCpuAllocator counter;
    const int64_t before = counter.reset_peak();
    (void)vae.decode(z);
    return {counter.peak() - before, counter.peak_outside_convs() - before};
}

// Note [Decode tail] on the tiny VAE (dim 12: 12 channels at full resolution; f32) with chunks of 2 latent frames
// (8 output frames); a full-resolution frame is 12·64·64·4 B = 192 KiB. Outside the convolutions' scratch, the
// whole chunk's full-resolution residual conv holds its input (8 frames), its padded input (10) and its output (8)
// besides the caches (≈ 25 frames over all levels) and the video (2.25); one frame at a time holds 1 + 3 + 1, so
// the peak should fall by about 21 frames (counted when written: 59.6 → 38.8); checked: by more than 10, and
// never up as the groups shrink. With the scratch (the CPU conv3d's im2col columns, 27·Ci values per output
// pixel of the call, also smaller per group) the whole peak falls from 268 to 65 frames.
TEST(VaeSpeed, TailFramesLowerThePeakOfLiveBytes) {
    at::manual_seed(25);
    const at::Tensor z = at::randn({16, 3, 8, 8});  // video [3, 9, 64, 64]
    constexpr int64_t kFrameBytes = 12 * 64 * 64 * 4;
    VAESpeedOptions s = variants()[4].speed;  // the engine's CUDA switches: cache_buffer, fused_norm, subpixel
    s.chunk_frames = 2;
    std::vector<Peaks> peaks;
    for (int64_t k : {0, 4, 2, 1}) {
        s.tail_frames = k;
        const WanVAE vae(store(), options(at::kFloat, true, s));
        peaks.push_back(decode_peak_bytes(vae, z));
        std::cout << "tail frames " << k << ": peak of live tensor bytes " << peaks.back().all << " ("
                  << static_cast<double>(peaks.back().all) / kFrameBytes << " full-resolution frames), outside the "
                  << "convolutions " << peaks.back().outside_convs << " ("
                  << static_cast<double>(peaks.back().outside_convs) / kFrameBytes << ")\n";
    }
    EXPECT_GT(peaks[0].outside_convs, 0);
    for (size_t i = 1; i < peaks.size(); ++i) {
        EXPECT_LT(peaks[i].all, peaks[i - 1].all) << i;
        EXPECT_LE(peaks[i].outside_convs, peaks[i - 1].outside_convs) << i;
    }
    EXPECT_GT(peaks[0].outside_convs - peaks[3].outside_convs, 10 * kFrameBytes);
}

}  // namespace
