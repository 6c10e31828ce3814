// WanVAE wrapper: latent scaling, frame-by-frame decode, chunked encode, optional spatial tiling.
// Ref: wan21-reference.md §5.1 (constants), §5.4 (encode/decode loops), §5.5 (precision).
#include "vae/vae.h"

#include "dist/dist.h"
#include "vae/row_split.h"
#include "vae/vae_modules.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <cmath>

namespace wan::vae {

using detail::Cache;
using detail::shape_str;

namespace {

// §5.1, quoted exactly.
constexpr float kLatentMean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
                                   0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f};
constexpr float kLatentStd[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                  3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

at::Tensor from_floats(const float* values, int64_t n) {
    return at::from_blob(const_cast<float*>(values), {n}, at::TensorOptions().dtype(at::kFloat)).clone();
}

std::string sizes_str(const at::Tensor& t) { return shape_str(t.sizes().vec()); }

bool cancel_asked(const DecodeCallbacks& cb) {
    const bool flag = cb.cancel_flag != nullptr && cb.cancel_flag->load(std::memory_order_relaxed);
    return flag || (cb.should_cancel && cb.should_cancel());
}

void check_cancel(const DecodeCallbacks& cb, const char* what, int64_t done, int64_t total) {
    if (cancel_asked(cb)) {
        throw Cancelled(strfmt("VAE %s cancelled after %lld of %lld %s", what, static_cast<long long>(done),
                               static_cast<long long>(total), std::string(what) == "decode" ? "latent frames"
                                                                                            : "chunks"));
    }
}

/// Start offsets of tiles of `tile` covering [0, n), neighbours sharing at least `overlap`: the fewest tiles
/// that allow it, spread evenly (first flush with 0, last flush with n).
std::vector<int64_t> tile_starts(int64_t n, int64_t tile, int64_t overlap) {
    if (n <= tile) return {0};
    const int64_t step = tile - overlap;
    const int64_t count = 1 + (n - tile + step - 1) / step;  // ceil((n - tile) / step) + 1
    std::vector<int64_t> starts;
    for (int64_t i = 0; i < count; ++i) {
        starts.push_back((i * (n - tile) + (count - 1) / 2) / (count - 1));  // round(i·(n-tile)/(count-1))
    }
    return starts;
}

/// Blend weight along one axis of a tile of `len` pixels:
/// linear ramps across the parts shared with the previous / next tile, 1 elsewhere. A ramp value is
/// (i + 0.5) / ramp, so weights stay positive and two complementary ramps sum to 1.
at::Tensor axis_weight(int64_t len, int64_t ramp_before, int64_t ramp_after) {
    std::vector<float> w(static_cast<size_t>(len), 1.0f);
    for (int64_t i = 0; i < ramp_before && i < len; ++i) {
        w[static_cast<size_t>(i)] = std::min(w[static_cast<size_t>(i)], (i + 0.5f) / ramp_before);
    }
    for (int64_t i = 0; i < ramp_after && i < len; ++i) {
        const size_t j = static_cast<size_t>(len - 1 - i);
        w[j] = std::min(w[j], (i + 0.5f) / ramp_after);
    }
    return from_floats(w.data(), len);
}

}  // namespace

at::Tensor latent_mean() { return from_floats(kLatentMean, 16); }
at::Tensor latent_std() { return from_floats(kLatentStd, 16); }
at::Tensor latent_inv_std() {
    // Upstream: scale = [mean, 1.0 / std] with std a float32 tensor → reciprocal computed in f32.
    return at::reciprocal(latent_std());
}

int64_t VAEConfig::time_stride() const {
    int64_t s = 1;
    for (bool t : temporal_downsample) s *= t ? 2 : 1;
    return s;
}
int64_t VAEConfig::space_stride() const { return int64_t{1} << temporal_downsample.size(); }

struct WanVAE::Impl {
    VAEConfig config;
    VAEOptions options;
    std::unique_ptr<detail::Encoder> encoder;  // null when options.load_encoder is false
    std::unique_ptr<detail::Decoder> decoder;
    detail::CausalConv3d conv1;  // 1×1×1 on the encoder output (mean ‖ log-variance)
    detail::CausalConv3d conv2;  // 1×1×1 on the latent before decoding
    at::Tensor mean;             // [1, z, 1, 1, 1] f32 on device
    at::Tensor inv_std;          // [1, z, 1, 1, 1] f32 on device

    /// Decoder over all latent frames of `u` ([1, z, T, h, w], after conv2); `sink(frame0, chunk)` receives each
    /// decoded chunk [1, 3, n, H, W] as soon as it exists. Progress counts from `done0` of `total`.
    template <typename Sink>
    void run_decoder(const at::Tensor& u, const DecodeCallbacks& cb, const detail::Hook* hook, int64_t done0,
                     int64_t total, Sink&& sink) const {
        Cache cache(static_cast<size_t>(decoder->num_slots()));
        cache.speed = options.speed;
        detail::StageClock clock(options.device, cb.stage_times);  // Note [VAE stage clock]
        if (cb.stage_times != nullptr) cache.clock = &clock;
        const int64_t t = u.size(2);
        const int output_level = static_cast<int>(config.dim_mult.size()) - 1;
        int64_t frame = 0;
        for (int64_t i = 0; i < t;) {
            check_cancel(cb, "decode", done0 + i, total);
            const int64_t n = chunk_length(i, t);
            at::Tensor y = decoder->forward(u.narrow(2, i, n), cache, hook);  // [1, 3, 1 or 4n, 8h, 8w]
            sink(frame, y);
            detail::mark(cache.clock, detail::Stage::Output, output_level);
            frame += y.size(2);
            i += n;
            if (cb.progress) cb.progress(done0 + i, total);
        }
        clock.finish();
    }

    /// Latent frames in the decoder call that starts at frame i of t: 1 for the first (upstream's "Rep" chunk),
    /// then VAESpeedOptions::chunk_frames (Note [Decode chunks]).
    int64_t chunk_length(int64_t i, int64_t t) const {
        return i == 0 ? 1 : std::min<int64_t>(options.speed.chunk_frames, t - i);
    }

    /// Checks the latent and returns the decoder's input: [1, z, T, h, w] after scaling and conv2.
    at::Tensor decoder_input(const at::Tensor& z_in) const;
    at::Tensor decode(const at::Tensor& z_in, const DecodeCallbacks& cb, bool clamp) const;
    at::Tensor decode_across(const at::Tensor& z_in, dist::Communicator& ranks, const DecodeCallbacks& cb,
                             bool clamp) const;
    /// decode_across() on `comm`, every rank of which owns latent rows.
    at::Tensor decode_rows(const at::Tensor& u, dist::Communicator& comm, const DecodeCallbacks& cb) const;
    at::Tensor encode(const at::Tensor& video_in, const DecodeCallbacks& cb) const;
};

WanVAE::WanVAE(const io::TensorStore& store, VAEOptions options) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    WAN_CHECK(options.dtype == at::kFloat || options.dtype == at::kBFloat16,
              "VAE option dtype: %s is not supported (float32 or bfloat16)", c10::toString(options.dtype));
    const TilingOptions& tl = options.tiling;
    WAN_CHECK(tl.tile_size >= 1, "VAE tiling option tile_size must be >= 1 latent pixel, got %lld",
              static_cast<long long>(tl.tile_size));
    WAN_CHECK(tl.overlap >= 0 && tl.overlap < tl.tile_size,
              "VAE tiling option overlap must be in [0, tile_size=%lld), got %lld",
              static_cast<long long>(tl.tile_size), static_cast<long long>(tl.overlap));
    WAN_CHECK(options.speed.chunk_frames >= 1, "VAE option speed.chunk_frames must be >= 1 latent frame, got %lld",
              static_cast<long long>(options.speed.chunk_frames));
    WAN_CHECK(options.speed.tail_frames >= 0, "VAE option speed.tail_frames must be >= 0 output frames (0: the whole "
              "chunk), got %lld", static_cast<long long>(options.speed.tail_frames));
    m.options = options;

    detail::WeightReader r(store, options.device, options.dtype, options.channels_last, options.speed);
    // Sizes come from tensor shapes: z_dim from conv2 [z, z, 1, 1, 1], dim from encoder.conv1 [dim, 3, 3, 3, 3]
    // (decoder.head.0.gamma [dim, 1, 1, 1] when the encoder is absent is not supported: upstream files hold both).
    const std::vector<int64_t> conv2_shape = r.shape_of("conv2.weight");
    WAN_CHECK(conv2_shape.size() == 5, "%s: VAE weight 'conv2.weight' has shape %s, expected [z, z, 1, 1, 1]",
              store.source().c_str(), shape_str(conv2_shape).c_str());
    m.config.z_dim = conv2_shape[0];
    const std::vector<int64_t> dec_conv1 = r.shape_of("decoder.conv1.weight");
    WAN_CHECK(dec_conv1.size() == 5 && dec_conv1[0] % m.config.dim_mult.back() == 0,
              "%s: VAE weight 'decoder.conv1.weight' has shape %s, expected [%lld·dim, %lld, 3, 3, 3]",
              store.source().c_str(), shape_str(dec_conv1).c_str(),
              static_cast<long long>(m.config.dim_mult.back()), static_cast<long long>(m.config.z_dim));
    m.config.dim = dec_conv1[0] / m.config.dim_mult.back();
    WAN_CHECK(m.config.z_dim == 16, "%s: VAE latent channels (conv2.weight) = %lld; the Wan2.1 latent statistics "
              "are defined for 16", store.source().c_str(), static_cast<long long>(m.config.z_dim));

    const int64_t z = m.config.z_dim;
    m.conv2.load(r, "conv2", z, z, {1, 1, 1}, true);
    m.conv1.load(r, "conv1", 2 * z, 2 * z, {1, 1, 1}, options.load_encoder);
    m.decoder = std::make_unique<detail::Decoder>(r, m.config);
    auto enc = std::make_unique<detail::Encoder>(r, m.config, options.load_encoder);
    if (options.load_encoder) m.encoder = std::move(enc);
    r.check_all_used();

    auto f32 = at::TensorOptions().dtype(at::kFloat).device(options.device);
    m.mean = latent_mean().to(f32).view({1, z, 1, 1, 1});
    m.inv_std = latent_inv_std().to(f32).view({1, z, 1, 1, 1});
    WAN_LOG_DEBUG("VAE loaded from %s: dim %lld, z_dim %lld, %d decoder / %d encoder cache slots",
                  store.source().c_str(), static_cast<long long>(m.config.dim), static_cast<long long>(z),
                  m.decoder->num_slots(), m.encoder ? m.encoder->num_slots() : 0);
}

WanVAE::~WanVAE() = default;
WanVAE::WanVAE(WanVAE&&) noexcept = default;
WanVAE& WanVAE::operator=(WanVAE&&) noexcept = default;

const VAEConfig& WanVAE::config() const { return impl_->config; }
const VAEOptions& WanVAE::options() const { return impl_->options; }

int64_t WanVAE::num_frames_video(int64_t num_frames_latent) const {
    return num_frames_latent < 1 ? 0 : 1 + impl_->config.time_stride() * (num_frames_latent - 1);
}

at::Tensor WanVAE::decode(const at::Tensor& z, const DecodeCallbacks& callbacks) const {
    return impl_->decode(z, callbacks, true);
}

at::Tensor WanVAE::decode_unclamped(const at::Tensor& z, const DecodeCallbacks& callbacks) const {
    return impl_->decode(z, callbacks, false);
}

at::Tensor WanVAE::decode_across(const at::Tensor& z, dist::Communicator& ranks, const DecodeCallbacks& callbacks,
                                 bool clamp) const {
    return impl_->decode_across(z, ranks, callbacks, clamp);
}

at::Tensor WanVAE::encode(const at::Tensor& video, const DecodeCallbacks& callbacks) const {
    return impl_->encode(video, callbacks);
}

at::Tensor WanVAE::Impl::decoder_input(const at::Tensor& z_in) const {
    const int64_t zc = config.z_dim;
    WAN_CHECK(z_in.defined(), "VAE decode: the latent is an undefined tensor");
    WAN_CHECK(z_in.dim() == 4 || (z_in.dim() == 5 && z_in.size(0) == 1),
              "VAE decode: latent must be [%lld, T, h, w] (or [1, %lld, T, h, w]), got %s",
              static_cast<long long>(zc), static_cast<long long>(zc), sizes_str(z_in).c_str());
    at::Tensor z = z_in.dim() == 4 ? z_in.unsqueeze(0) : z_in;  // [1, z, T, h, w]
    WAN_CHECK(z.size(1) == zc, "VAE decode: latent has %lld channels, expected %lld (shape %s)",
              static_cast<long long>(z.size(1)), static_cast<long long>(zc), sizes_str(z_in).c_str());
    WAN_CHECK(z.size(2) >= 1 && z.size(3) >= 1 && z.size(4) >= 1,
              "VAE decode: latent %s is too small: needs at least 1 frame and 1×1 pixels", sizes_str(z_in).c_str());
    WAN_CHECK(at::isFloatingType(z.scalar_type()), "VAE decode: latent dtype %s is not floating point",
              c10::toString(z.scalar_type()));

    // z_raw = z / inv_std + mean in f32 (PARITY: divide by the f32 reciprocal, §5.1), then conv2 over the
    // whole sequence (1×1×1, so it commutes with chunking, tiling and the row split).
    at::Tensor z_raw = z.to(options.device, at::kFloat).div(inv_std).add_(mean);  // [1, z, T, h, w]
    at::Tensor u = conv2.forward(z_raw.to(options.dtype));                        // [1, z, T, h, w]
    return options.channels_last ? u.contiguous(at::MemoryFormat::ChannelsLast3d) : u;
}

namespace {
/// Waits until the work queued on `device`'s current stream (e.g. copies into pinned host memory) has finished.
void wait_for_device(c10::Device device) {
    c10::impl::getDeviceGuardImpl(device.type())->getStream(device).synchronize();
}
}  // namespace

void WanVAE::reserve_result(int64_t frames, int64_t height, int64_t width) const {
    const VAEOptions& o = options();
    if (!o.device.is_cuda() || !o.output_device.is_cpu()) return;
    (void)at::empty({3, frames, height, width}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
}

at::Tensor WanVAE::Impl::decode(const at::Tensor& z_in, const DecodeCallbacks& cb, bool clamp) const {
    c10::InferenceMode guard;
    const at::Tensor u = decoder_input(z_in);  // [1, z, T, h, w]
    const int64_t t = u.size(2), h = u.size(3), w = u.size(4);
    const int64_t ss = config.space_stride();
    const int64_t frames = 1 + config.time_stride() * (t - 1);
    const int64_t out_h = ss * h, out_w = ss * w;
    const detail::Hook* hook = cb.on_intermediate ? &cb.on_intermediate : nullptr;

    // From a GPU to host memory the result buffer is pinned, so that each chunk's copy is queued behind its
    // kernels instead of draining the queue (a pageable copy waits for it) while the host could launch the next
    // latent frame. Measured at 480p on the H200 it is within noise (1.29 → 1.27 s, docs/PERFORMANCE.md session 31):
    // the decode's kernels are long enough to hide the relaunch. LibTorch's caching host allocator keeps the
    // buffer for the next video of the same size.
    const bool queued_copies = options.device.is_cuda() && options.output_device.is_cpu();
    at::Tensor out = at::empty({3, frames, out_h, out_w}, at::TensorOptions()
                                                              .dtype(at::kFloat)
                                                              .device(options.output_device)
                                                              .pinned_memory(queued_copies));
    const TilingOptions& tl = options.tiling;
    if (!tl.enabled || (h <= tl.tile_size && w <= tl.tile_size)) {
        if (hook != nullptr) (*hook)("conv2", u);
        run_decoder(u, cb, hook, 0, t, [&](int64_t f0, const at::Tensor& y) {
            // Move each chunk off to the result buffer so that only the caches outlive a latent frame.
            // Clamped where it was computed (±1 are exact in bf16, so before or after the widening is the same).
            out.narrow(1, f0, y.size(2)).copy_(clamp ? y[0].clamp(-1.0, 1.0) : y[0], /*non_blocking=*/queued_copies);
        });
        if (queued_copies) wait_for_device(options.device);
        clamp = false;  // done per chunk
    } else {
        // Spatial tiles through all frames, each with its own cache; linear blending of the overlaps in pixel
        // space: out = Σ wᵢ·tileᵢ / Σ wᵢ (weights separable in h and w).
        const std::vector<int64_t> ys = tile_starts(h, tl.tile_size, tl.overlap);
        const std::vector<int64_t> xs = tile_starts(w, tl.tile_size, tl.overlap);
        const int64_t total = static_cast<int64_t>(ys.size() * xs.size()) * t;
        auto f32_out = at::TensorOptions().dtype(at::kFloat).device(options.output_device);
        out.zero_();
        at::Tensor wsum = at::zeros({1, 1, out_h, out_w}, f32_out);  // [1, 1, H, W]
        int64_t done = 0;
        for (size_t iy = 0; iy < ys.size(); ++iy) {
            for (size_t ix = 0; ix < xs.size(); ++ix) {
                const int64_t y0 = ys[iy], x0 = xs[ix];
                const int64_t th = std::min(tl.tile_size, h), tw = std::min(tl.tile_size, w);
                // Ramps cover the pixels shared with the neighbour on that side.
                const int64_t up = iy > 0 ? (ys[iy - 1] + th - y0) * ss : 0;
                const int64_t down = iy + 1 < ys.size() ? (y0 + th - ys[iy + 1]) * ss : 0;
                const int64_t left = ix > 0 ? (xs[ix - 1] + tw - x0) * ss : 0;
                const int64_t right = ix + 1 < xs.size() ? (x0 + tw - xs[ix + 1]) * ss : 0;
                at::Tensor wy = axis_weight(th * ss, up, down).to(f32_out).view({1, 1, th * ss, 1});
                at::Tensor wx = axis_weight(tw * ss, left, right).to(f32_out).view({1, 1, 1, tw * ss});
                at::Tensor wt = wy * wx;  // [1, 1, th·8, tw·8]
                wsum.narrow(2, y0 * ss, th * ss).narrow(3, x0 * ss, tw * ss).add_(wt);
                at::Tensor tile = u.narrow(3, y0, th).narrow(4, x0, tw);  // [1, z, T, th, tw]
                run_decoder(tile, cb, nullptr, done, total, [&](int64_t f0, const at::Tensor& y) {
                    at::Tensor yc = y[0].to(f32_out) * wt;  // [3, n, th·8, tw·8]
                    out.narrow(1, f0, yc.size(1)).narrow(2, y0 * ss, th * ss).narrow(3, x0 * ss, tw * ss).add_(yc);
                });
                done += t;
            }
        }
        out.div_(wsum);
    }
    if (clamp) out.clamp_(-1.0, 1.0);
    if (cb.stage_times != nullptr) ++cb.stage_times->decodes;
    return out;
}

// Note [Decode across the ranks]
// Under mpirun every rank holds the final latent, so each can decode a band of rows of every frame: rank i
// owns latent rows [start_i, start_i + count_i) (RowSplit::even: unequal when h % ranks != 0) and, after each
// ×2 upsample, twice as many feature rows. What crosses a band edge:
//  - the 3×3(×3) convolutions (CausalConv3d with row padding 1, the resample's per-frame conv) read one row
//    beyond the band on each side: RowExchange::with_halo brings it from the neighbour (zeros at the frame's
//    edges, i.e. the padding), and the conv runs without row padding. The causal cache keeps each rank's
//    haloed input frames, so later frames line up with no further exchange of the past;
//  - the upsample's conv takes its halo before the ×2 (one row, replicated to two, one of which is used);
//  - the middle block's self-attention attends over the whole frame: keys and values are all-gathered
//    (queries stay local, so each rank computes its own rows' outputs);
//  - RMS_norm normalises each pixel over channels only, and the 1×1×1 convs and the temporal convs act per
//    pixel: nothing to exchange.
// Every pixel is thus the same sum of the same terms as in decode(); the tests bound the difference by float
// rounding. Each decoded chunk is all-gathered (through the same communicator, so NCCL carries CUDA
// tensors) and rank 0 keeps it; the chunks are small next to the decoder's activations.

at::Tensor WanVAE::Impl::decode_across(const at::Tensor& z_in, dist::Communicator& ranks, const DecodeCallbacks& cb,
                                       bool clamp) const {
    if (ranks.size() == 1) return decode(z_in, cb, clamp);
    c10::InferenceMode guard;
    const at::Tensor u = decoder_input(z_in);  // [1, z, T, h, w]
    const int64_t rows = u.size(3);
    // Each rank needs a latent row of its own; the ranks past the rows sit out.
    const int active = static_cast<int>(std::min<int64_t>(ranks.size(), rows));
    if (active < ranks.size() && ranks.rank() == 0) {
        WAN_LOG_INFO("VAE decode across ranks: %lld latent rows for %d ranks; ranks %d..%d sit out",
                     static_cast<long long>(rows), ranks.size(), active, ranks.size() - 1);
    }
    if (active == 1) return ranks.rank() == 0 ? decode(z_in, cb, clamp) : at::Tensor();
    std::unique_ptr<dist::Communicator> subgroup;
    dist::Communicator* comm = &ranks;
    if (active < ranks.size()) {
        subgroup = ranks.split(ranks.rank() < active ? 0 : -1, ranks.rank());  // collective over `ranks`
        if (!subgroup) return {};
        comm = subgroup.get();
    }
    at::Tensor out = decode_rows(u, *comm, cb);
    if (out.defined() && clamp) out.clamp_(-1.0, 1.0);
    return out;
}

at::Tensor WanVAE::Impl::decode_rows(const at::Tensor& u, dist::Communicator& comm, const DecodeCallbacks& cb) const {
    const int64_t t = u.size(2), h = u.size(3), w = u.size(4);
    const int64_t ss = config.space_stride();
    detail::CommRowExchange exchange(comm, detail::RowSplit::even(h, comm.size()));
    const size_t me = static_cast<size_t>(comm.rank());
    const at::Tensor band = u.narrow(3, exchange.split().start[me], exchange.split().count[me])
                                .contiguous(u.suggest_memory_format());  // [1, z, T, h_i, w], u's layout
    at::Tensor out;
    if (comm.rank() == 0) {
        out = at::empty({3, 1 + config.time_stride() * (t - 1), ss * h, ss * w},
                        at::TensorOptions().dtype(at::kFloat).device(options.output_device));
    }
    Cache cache(static_cast<size_t>(decoder->num_slots()));
    cache.rows = &exchange;
    cache.speed = options.speed;
    int64_t frame = 0;
    for (int64_t i = 0; i < t;) {
        // Every rank leaves together: a cancel seen by one is agreed on by all before the next frame's exchanges.
        const auto mine = cancel_asked(cb) ? dist::StepStatus::Cancel : dist::StepStatus::Continue;
        if (dist::agree(comm, mine) != dist::StepStatus::Continue) {
            throw Cancelled(strfmt("VAE decode cancelled after %lld of %lld latent frames", static_cast<long long>(i),
                                   static_cast<long long>(t)));
        }
        const int64_t n = chunk_length(i, t);
        at::Tensor y = decoder->forward(band.narrow(2, i, n), cache, nullptr);  // [1, 3, f, 8·h_i, 8w]
        at::Tensor whole = exchange.whole_frame(y);                             // [1, 3, f, 8h, 8w]
        if (out.defined()) out.narrow(1, frame, whole.size(2)).copy_(whole[0]);
        frame += y.size(2);
        i += n;
        if (cb.progress) cb.progress(i, t);
    }
    return out;
}

at::Tensor WanVAE::Impl::encode(const at::Tensor& video_in, const DecodeCallbacks& cb) const {
    c10::InferenceMode guard;
    WAN_CHECK(encoder != nullptr, "VAE encode: the encoder was not loaded (VAEOptions::load_encoder is false)");
    WAN_CHECK(video_in.defined(), "VAE encode: the video is an undefined tensor");
    WAN_CHECK(video_in.dim() == 4 || (video_in.dim() == 5 && video_in.size(0) == 1),
              "VAE encode: video must be [3, F, H, W] (or [1, 3, F, H, W]), got %s", sizes_str(video_in).c_str());
    at::Tensor x = video_in.dim() == 4 ? video_in.unsqueeze(0) : video_in;  // [1, 3, F, H, W]
    const int64_t ss = config.space_stride(), ts = config.time_stride();
    WAN_CHECK(x.size(1) == 3, "VAE encode: video has %lld channels, expected 3 (shape %s)",
              static_cast<long long>(x.size(1)), sizes_str(video_in).c_str());
    WAN_CHECK(x.size(2) >= 1, "VAE encode: video %s has no frames", sizes_str(video_in).c_str());
    WAN_CHECK(x.size(3) >= ss && x.size(4) >= ss && x.size(3) % ss == 0 && x.size(4) % ss == 0,
              "VAE encode: video height and width must be positive multiples of %lld, got %s",
              static_cast<long long>(ss), sizes_str(video_in).c_str());
    WAN_CHECK(at::isFloatingType(x.scalar_type()), "VAE encode: video dtype %s is not floating point",
              c10::toString(x.scalar_type()));
    const int64_t f = x.size(2);
    const int64_t chunks = 1 + (f - 1) / ts;
    if ((f - 1) % ts != 0) {
        WAN_LOG_WARN("VAE encode: %lld frames is not 1 + %lld·k; the last %lld frames are ignored (as upstream)",
                     static_cast<long long>(f), static_cast<long long>(ts), static_cast<long long>((f - 1) % ts));
    }
    x = x.to(options.device, options.dtype);
    const detail::Hook* hook = cb.on_intermediate ? &cb.on_intermediate : nullptr;

    // Chunks: frame 0, then frames 1+4(i-1) … 4i (§5.4).
    Cache cache(static_cast<size_t>(encoder->num_slots()));
    cache.speed = options.speed;
    std::vector<at::Tensor> outs;
    for (int64_t i = 0; i < chunks; ++i) {
        check_cancel(cb, "encode", i, chunks);
        at::Tensor chunk = i == 0 ? x.narrow(2, 0, 1) : x.narrow(2, 1 + ts * (i - 1), ts);  // [1, 3, 1|4, H, W]
        outs.push_back(encoder->forward(chunk, cache, hook));                              // [1, 2z, 1, h, w]
        if (cb.progress) cb.progress(i + 1, chunks);
    }
    cache.clear();
    at::Tensor enc = outs.size() == 1 ? outs[0] : at::cat(outs, 2);  // [1, 2z, T, h, w]
    at::Tensor y = conv1.forward(enc);                                 // [1, 2z, T, h, w]
    if (hook != nullptr) (*hook)("conv1", y);
    at::Tensor mu = y.narrow(1, 0, config.z_dim).to(at::kFloat);       // log-variance discarded
    at::Tensor latent = (mu - mean).mul_(inv_std);                     // [1, z, T, h, w]
    return latent[0].to(options.output_device);
}

}  // namespace wan::vae
