// Private: the WanVAE_ module tree (encoder, decoder and their blocks) over plain ATen tensors, with the
// chunked causal feature cache. Ref: wan21-reference.md §5.2–§5.4.
#pragma once

#include "io/io.h"
#include "vae/stage_clock.h"
#include "vae/vae.h"

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace wan::vae::detail {

/// One cache slot of §5.4: empty (upstream None), the "Rep" marker, or up to 2 cached frames.
struct CacheSlot {
    at::Tensor frames;  // [b, C, k<=2, h, w]
    bool rep = false;
    bool empty() const { return !frames.defined() && !rep; }
};

/// A decode whose frame rows are split over ranks (vae/row_split.h builds one over a dist::Communicator).
/// Each rank holds the rows [r0, r1) of every feature map (doubled at every spatial upsample); the modules
/// ask it for the rows their spatial kernels reach beyond the slab and for whole frames where they need
/// them. Both calls are collective over the participating ranks, in the same order on all of them.
class RowExchange {
public:
    virtual ~RowExchange() = default;
    /// x [b, C, t, h, w] (this rank's rows) → [b, C, t, h + 2·halo, w]: `halo` rows of the rank above in
    /// front, of the rank below behind; zeros at the top and bottom edges of the frame (the zero padding).
    virtual at::Tensor with_halo(const at::Tensor& x, int64_t halo) = 0;
    /// x [b, C, t, h, w] (this rank's rows) → [b, C, t, H, w]: the whole frame, on every rank.
    virtual at::Tensor whole_frame(const at::Tensor& x) = 0;
};

/// The state of one decode/encode call: the cache slots and, when the rows are split over ranks, the
/// exchange with the neighbour ranks (null otherwise); the speed switches of the call and its stage clock.
struct Cache : std::vector<CacheSlot> {
    using std::vector<CacheSlot>::vector;
    RowExchange* rows = nullptr;
    VAESpeedOptions speed;
    StageClock* clock = nullptr;  // Note [VAE stage clock]; null: not measuring
};

inline void mark(StageClock* clock, Stage stage, int level) {
    if (clock != nullptr) clock->mark(stage, level);
}

// Note [VAE speed switches]
// VAESpeedOptions (vae.h) turns on candidate speed-ups of the decode, each measured by `wan-bench vae` before it
// becomes a default; each computes the same sums as the plain path, in another order or layout:
//  - fold_time: a causal conv with kt time taps reads, for output frame τ, the frames τ..τ+kt-1 of
//    [zeros | cache | input]. Stacking those kt frames along the channels (CausalConv3d::weight2d =
//    weight permuted to [Co, kt·Ci, kh, kw]) makes it one conv2d over the output frames as a batch, the kind of
//    convolution cuDNN tunes best; the stacked input is written straight from the cache and the input (no cat
//    of the padded sequence first). The resample's per-frame 3×3 and the 1×1×1 convs become conv2d over the
//    frames (free views in the channels-last layout).
//  - cache_buffer: without fold_time, the norm + SiLU before a cached conv writes its result into the conv's
//    padded input buffer, behind the cached frames, so the cat copy of the whole input disappears.
//  - fused_norm: RMS norm · γ and SiLU in one CUDA kernel over bf16 channels-last rows (vae/cuda), with the
//    ATen path's roundings; elsewhere the ATen ops.
//  - pad_head: the head's Co = 3 conv runs with 8 output channels (zeros), then narrowed.
//  - subpixel_upsample (Note [Sub-pixel upsample]): each nearest ×2 + 3×3 conv as 2×2 phase convs of the
//    low-resolution input, one conv with 4·Co output channels, interleaved into the 2× map by one copy.
//  - chunk_frames (Note [Decode chunks]): n latent frames per decoder call after the first.
//  - tail_frames (Note [Decode tail]): a memory switch, the decoder's last stages a few output frames at a time.
//
// Note [Decode chunks]
// Upstream decodes one latent frame per call, the cache slots carrying the last 2 input frames of every causal
// conv. Each causal conv over a chunk of n frames with its cache computes exactly what n one-frame calls do
// (the slot then holds the chunk's last 2 frames, the same ones), the norms, per-frame convs and the attention
// act frame by frame, and the temporal up-convolution after the first ("Rep") chunk sees
// [zeros, zeros, x1, x2, ...] either way (Resample::forward: a chunk after "Rep" starts from zero history). So
// only the first chunk must stay 1 frame; the later ones may hold n, with the same video up to summation order.

// Note [Decode tail]
// A decoder call turns n latent frames into 4n output frames (1 for the first call), and the feature maps are
// largest after the last temporal upsample: there the frame count is final, the channels are 192 at half and 96
// at full resolution. VAESpeedOptions::tail_frames = k runs those layers (the last two stages' residual blocks,
// the last spatial upsample, the head) k output frames at a time (Decoder::forward_tail): each of them is a
// causal conv with its cache (which over k frames computes exactly what k one-frame calls do, as in Note
// [Decode chunks]), a per-frame op (norms, SiLU, the 1×1×1 shortcut, the spatial upsample) or the residual add,
// so the video is the same; f32 differs from the whole chunk at most by the convolutions' summation order for
// another frame count (the tests compare). Only the tail's activations shrink: the cache slots (2 frames per
// cached conv) stay as they are.
// Two more savings hold for every decode (no switch): a cache slot's new frames are written into its own storage
// once the old ones have been read (overwrite_last_frames: no second slot alive during the convolution), and the
// norm + SiLU before a cached conv lets go of its input once the activation is written (the residual block's
// first conv output, the head's input), where the caller hands it over (std::move).
// Sizes, 832×480 bf16, n = 1 (one full-resolution frame F = 96 channels = 76.7 MB; a half-resolution frame of 192
// channels is F/2): the caches hold 2 frames of 7 full-resolution sites (6 residual convs, the head), 6 at half,
// 7 at a quarter (with the last temporal upsample's) and 12 at the latent's: ≈ 25 F = 1.91 GB with any switch.
// Besides them, the largest moment was a full-resolution residual block's second conv over the 4-frame chunk:
// its input x (4 F, the residual), the first conv's output (4 F), the padded input (6 F), the slot's new frames
// (2 F) and the output (4 F) = 20 F ≈ 1.53 GB. Dropping the first conv's output after its norm and writing the
// slot in place leave 14 F; with k = 1 a tail block holds its 1-frame x, y, output and the 3-frame padded input
// plus the tail's own input (4 frames at half resolution, 2 F, held while the groups run): ≈ 7 F ≈ 0.54 GB, as
// the last temporal upsample's own peak (≈ 6.5 F). So ≈ −13 F ≈ −1.0 GB at 480p, −2.3 GB at 1280×720 (2.31× the
// pixels). Counted once on the CPU with test_vae_speed's counting allocator (live tensor bytes outside the
// convolutions' scratch; the real-size random VAE of wan-bench at 104×64, f32, 3 latent frames, the engine's CUDA
// switches — on the CPU the norm's ATen path adds a temporary the fused kernel has not; too slow for CI, where
// TailFramesLowerThePeakOfLiveBytes counts the tiny VAE), per output pixel in bf16: 8.62 kB before, 8.25 with k = 0, 7.10 with k = 2, 6.34 with k = 1;
// at 480p 3.44 → 3.29 / 2.84 / 2.53 GB, at 720p 7.95 → 7.60 / 6.55 / 5.84 GB (−0.91 GB at 480p, −2.1 GB at
// 720p with k = 1). The 14B fp8 480p job peaked at 18.89 GB in the decode (15.06 GB resident), so ≈ 17.9–18.0 GB
// is expected with k = 1, ≈ 18.3 GB with k = 2: to be measured on the GPU (wan-bench gen; cuDNN's workspaces
// come on top and may shrink with the frames per call too).
// What it costs: the convolutions do the same work in k-frame pieces (a full-resolution frame is still 400 k
// pixels), but every call of a cached conv copies the 2 cached frames into its padded input and its last 2 into
// the slot: 4·4/k frame copies per site and chunk instead of 4. With k = 1 that is 12 more per site, ≈ 18 GB of
// memory traffic per latent frame at 480p over the 7 full- and 6 half-resolution sites, ≈ 0.1 s per 81-frame
// video on an H200 (≈ 10 % of the decode, a fraction of a per cent of a generation); with k = 2 a third of that.
// Measured on the H200 (session 32, docs/PERFORMANCE.md): the 14B fp8 480p job's peak 18.13 → 17.60 GB (and
// 18.89 GB before the in-place cache slots and the early-freed norm inputs), the decode 0.870 → 0.960 s at 480p,
// 2.049 → 2.261 s at 720p: the copies cost 10 %, more than estimated. So the engine turns k = 1 on only where
// memory comes first (fp8 DiT weights, --max-vram, --offload-dit: pipeline::default_vae_speed).

// Note [Sub-pixel upsample]
// The upsample repeats each pixel of X [C, h, w] into a 2×2 block, U[p, q] = X[⌊p/2⌋, ⌊q/2⌋], and convolves U
// with a 3×3 kernel W (zero padding 1). Output row p = 2i + a (phase a ∈ {0, 1}) with kernel row d ∈ {−1, 0, 1}
// reads U row 2i + a + d, which is X row i + ⌊(a + d)/2⌋:
//     a = 0:  d = −1 → X row i − 1;   d = 0, +1 → X row i
//     a = 1:  d = −1, 0 → X row i;    d = +1 → X row i + 1
// So the rows of one phase see two X rows only, i − 1 + a and i + a, through merged kernel rows: phase 0 weighs
// them (W₀, W₁ + W₂), phase 1 (W₀ + W₁, W₂). Columns alike with phase e. Hence
//     Out[2i + a, 2j + e] = bias + Σ_{u,v ∈ {0,1}} K_ae[u, v] · X[i − 1 + a + u, j − 1 + e + v],
//     K_ae = R_a · W · R_eᵀ,  R_0 = [[1,0,0],[0,1,1]],  R_1 = [[1,1,0],[0,0,1]]   (2×3 row/column merges).
// The padding carries over: U row 2i + a + d is outside [0, 2h) exactly when X row i + ⌊(a + d)/2⌋ is outside
// [0, h), so zero padding X by one row and column per side is right. A 2×2 conv of X with that padding has
// outputs o ∈ [0, h + 1), o reading X rows o − 1 and o: phase a's row i is o = i + a (and so for columns).
// With the four K_ae stacked along the output channels (phase (a, e) in block 2a + e of Co channels) it is ONE
// conv, weight [4·Co, C, 2, 2], giving Y [4·Co, h + 1, w + 1], and
//     Out[c, 2i + a, 2j + e] = Y[(2a + e)·Co + c, i + a, j + e],
// an index linear in (c, i, a, j, e): a strided view of Y, made dense by one copy (interleave_phases).
// Cost: 16·Co·C multiply-adds per low-resolution pixel (plus the extra row and column) against 36 for the 2×2
// block of the plain path: 2.25× fewer; the 4× larger upsampled input is never written. upsample3d's frame
// interleave (S = 2 frames from the channel halves) becomes a copy of the low-resolution input first. The merged
// taps are summed from the stored values in double and rounded once to the weight dtype, so f32 results differ
// from the plain path by summation order only, bf16 ones by one rounding of each merged tap. Split rows
// (decode_across): the halo row on each side stands for the zero row, and the conv runs without row padding.

using Hook = std::function<void(const std::string&, const at::Tensor&)>;

/// Reads and validates weights by key. Every key read is recorded so that the caller can reject
/// unexpected keys afterwards (strict, like load_state_dict).
class WeightReader {
public:
    WeightReader(const io::TensorStore& store, c10::Device device, at::ScalarType dtype, bool channels_last = false,
                 VAESpeedOptions speed = {})
        : store_(store), device_(device), dtype_(dtype), channels_last_(channels_last), speed_(speed) {}
    /// Checks presence and shape; returns the tensor on the device in the dtype, or an undefined tensor when
    /// `load` is false (validation only).
    at::Tensor take(const std::string& key, const std::vector<int64_t>& shape, bool load = true);
    /// Shape of a key, with an error naming it when absent.
    std::vector<int64_t> shape_of(const std::string& key) const;
    /// Throws on the first key of the store that was never taken.
    void check_all_used() const;
    at::ScalarType dtype() const { return dtype_; }
    /// A 5-D convolution weight in the layout the activations use (channels-last 3D when asked for).
    at::Tensor conv_layout(const at::Tensor& weight) const;
    /// A 4-D (conv2d) weight, dense, in the matching 2D layout (channels-last 2D when asked for).
    at::Tensor conv2d_layout(const at::Tensor& weight) const;
    const VAESpeedOptions& speed() const { return speed_; }
    /// The stored values of `key` (taken before) in double on the CPU, for weights derived by summing stored
    /// values: summed there, they round once to the dtype on the way to the device (to_device).
    at::Tensor load_exact(const std::string& key) const;
    at::Tensor to_device(const at::Tensor& t) const { return t.to(device_, dtype_); }

private:
    const io::TensorStore& store_;
    c10::Device device_;
    at::ScalarType dtype_;
    bool channels_last_;
    VAESpeedOptions speed_;
    std::set<std::string> used_;
};

/// Assigns cache slots in execution order (the upstream feat_idx counter).
struct SlotCounter {
    int next = 0;
    int take() { return next++; }
};

/// CausalConv3d(Ci, Co, k, stride, padding (pt, ph, pw)): explicit 2·pt zero frames in front of time (or the
/// cache), symmetric ph/pw spatial zero padding (done by the convolution itself). §5.2.
struct RMSNorm;

struct CausalConv3d {
    at::Tensor weight;    // [Co, Ci, kt, kh, kw]
    at::Tensor bias;      // [Co]
    at::Tensor weight2d;  // fold_time: [Co, kt·Ci, kh, kw], tap-major (Note [VAE speed switches]); else undefined
    std::array<int64_t, 3> stride{1, 1, 1};
    std::array<int64_t, 3> padding{0, 0, 0};
    int slot = -1;  // cache slot when this is a cached site (temporal kernel 3)
    int64_t out_channels = 0;  // pad_head: the real Co when weight carries zero rows past it; 0 otherwise
    Stage stage = Stage::Conv333;  // what the stage clock charges the convolution to
    int level = 0;                 // its resolution level (stage clock)

    void load(WeightReader& r, const std::string& prefix, int64_t ci, int64_t co, std::array<int64_t, 3> k,
              bool load_values);
    /// The VAE's usual site: a 3×3×3 kernel, padding 1 on every axis and the next cache slot of `slots`.
    void load_cached_3x3x3(WeightReader& r, const std::string& prefix, int64_t ci, int64_t co, SlotCounter& slots,
                           bool load_values);
    /// With fold_time, builds weight2d when the conv folds (stride 1 in time, 2·pt = kt − 1 front frames);
    /// call once stride and padding are final.
    void fold(const WeightReader& r);
    /// pad_head: zero output channels up to 8 (the result is narrowed back to the real ones).
    void pad_out_channels(const WeightReader& r, int64_t to);
    /// Plain causal conv; `cache` (k frames, may be undefined) replaces k of the 2·pt front zero frames.
    /// `pad_h` < 0: the layer's own row padding; 0 when the caller already added halo rows.
    at::Tensor forward(const at::Tensor& x, const at::Tensor& cache = {}, int64_t pad_h = -1,
                       StageClock* clock = nullptr) const;
    /// The cached-site rule of §5.4: runs forward() with this site's slot, then stores the last 2 input frames.
    /// With cache.rows the input first gets its halo rows, and the slot keeps the haloed frames.
    at::Tensor forward_cached(const at::Tensor& x, Cache& cache) const;
    /// forward_cached(SiLU(norm(x))): with cache.speed.cache_buffer the activation is written straight into the
    /// padded input (behind the cached frames) instead of being concatenated to them; with fold_time straight
    /// into the time-folded input. `x` is let go once the activation exists (a caller that std::moves it in
    /// frees it then: Note [Decode tail]).
    at::Tensor forward_cached(at::Tensor x, const RMSNorm& norm, Cache& cache) const;

private:
    at::Tensor folded_norm_conv(at::Tensor x, const RMSNorm& norm, Cache& cache) const;
};

/// RMS_norm over channels: x / max(‖x‖₂, 1e-12) · sqrt(C) · γ. §5.2.
struct RMSNorm {
    at::Tensor gamma_scaled;  // [C, 1, 1, 1] = γ · sqrt(C)
    int64_t channels = 0;
    void load(WeightReader& r, const std::string& key, int64_t c, bool images, bool load_values);
    at::Tensor forward(const at::Tensor& x) const;  // [b, C, t, h, w]
    /// SiLU(forward(x)) written into `out` (x's shape, possibly a view into a larger buffer) or, when `out` is
    /// undefined, into a new tensor; returned. cache.speed.fused_norm: one CUDA kernel where it applies.
    at::Tensor forward_silu(const at::Tensor& x, Cache& cache, int level, at::Tensor out = {}) const;
};

/// A layer of the encoder/decoder stage lists.
struct Layer {
    virtual ~Layer() = default;
    virtual at::Tensor forward(const at::Tensor& x, Cache& cache) const = 0;
    virtual int64_t out_channels() const = 0;
    /// The resolution level of its input, for the stage clock (0 = the latent's).
    virtual void set_level(int level) = 0;
};

struct ResidualBlock : Layer {
    RMSNorm norm0, norm3;
    CausalConv3d conv2, conv6;
    bool has_shortcut = false;
    CausalConv3d shortcut;  // 1×1×1 when Ci != Co
    int64_t co = 0;
    int level = 0;
    ResidualBlock(WeightReader& r, const std::string& prefix, int64_t ci, int64_t co, SlotCounter& slots,
                  bool load_values);
    at::Tensor forward(const at::Tensor& x, Cache& cache) const override;
    int64_t out_channels() const override { return co; }
    void set_level(int l) override { level = conv2.level = conv6.level = shortcut.level = l; }
};

/// Single-head self-attention over the h·w pixels of each frame (no cache). §5.2.
struct AttentionBlock : Layer {
    RMSNorm norm;
    at::Tensor qkv_weight;   // [3C, C]
    at::Tensor qkv_bias;     // [3C, 1]
    at::Tensor proj_weight;  // [C, C]
    at::Tensor proj_bias;    // [C, 1]
    int64_t c = 0;
    int level = 0;
    AttentionBlock(WeightReader& r, const std::string& prefix, int64_t c, bool load_values);
    at::Tensor forward(const at::Tensor& x, Cache& cache) const override;
    int64_t out_channels() const override { return c; }
    void set_level(int l) override { level = l; }
};

enum class ResampleMode { Upsample2d = 1, Upsample3d, Downsample2d, Downsample3d };

struct Resample : Layer {
    ResampleMode mode;
    at::Tensor weight;    // [Co, C, 1, 3, 3]: the per-frame Conv2d as a conv3d with temporal kernel 1
    at::Tensor weight2d;  // fold_time: [Co, C, 3, 3], the per-frame Conv2d as one (frames as the batch)
    at::Tensor bias;      // [Co]
    /// subpixel_upsample (Note [Sub-pixel upsample]): the phase kernels [4·Co, C, 1, 2, 2] (conv3d), or
    /// [4·Co, C, 2, 2] with fold_time (conv2d over the frames), and the bias repeated per phase [4·Co].
    at::Tensor phase_weight, phase_bias;
    CausalConv3d time_conv;
    int slot = -1;
    int64_t c = 0, co = 0;
    int level = 0;  // of the input; an upsample's convolution runs one level up
    Resample(WeightReader& r, const std::string& prefix, int64_t c, ResampleMode mode, SlotCounter& slots,
             bool load_values);
    at::Tensor forward(const at::Tensor& x, Cache& cache) const override;
    int64_t out_channels() const override { return co; }
    void set_level(int l) override { level = time_conv.level = l; }

private:
    /// Nearest ×2 upsampling and the 3×3 conv of x [b, S·C, t, h, w] whose S channel groups become S
    /// consecutive frames (S = 2 after the temporal up-convolution, else 1) → [b, C/2, S·t, 2h, 2w].
    /// `channels_last`: the upsampled map is written channels-last 3D (the layout of the resample's input).
    at::Tensor upsample_conv(const at::Tensor& x, int64_t s, bool channels_last, Cache& cache) const;
    /// The same result through the phase convolutions (phase_weight defined).
    at::Tensor subpixel_conv(const at::Tensor& x, int64_t s, bool channels_last, Cache& cache) const;
    /// The per-frame 3×3 conv of x [b, C, t, h, w]: conv3d with kernel [1, 3, 3], or conv2d with fold_time.
    at::Tensor frame_conv(const at::Tensor& x, std::array<int64_t, 2> stride, std::array<int64_t, 2> pad) const;
};

/// Encoder3d: conv1, downsamples, middle, head. §5.3.
class Encoder {
public:
    Encoder(WeightReader& r, const VAEConfig& cfg, bool load_values);
    /// One chunk of frames [b, 3, t, H, W] → [b, 2z, t', H/8, W/8].
    at::Tensor forward(const at::Tensor& x, Cache& cache, const Hook* hook) const;
    int num_slots() const { return num_slots_; }

private:
    CausalConv3d conv1_;
    std::vector<std::unique_ptr<Layer>> downsamples_;
    std::unique_ptr<ResidualBlock> middle0_, middle2_;
    std::unique_ptr<AttentionBlock> middle1_;
    RMSNorm head0_;
    CausalConv3d head2_;
    int num_slots_ = 0;
};

/// Decoder3d: conv1, middle, upsamples, head. §5.3.
class Decoder {
public:
    Decoder(WeightReader& r, const VAEConfig& cfg);
    /// A chunk of n latent frames [b, z, n, h, w] → [b, 3, 1 (first chunk) or 4n, 8h, 8w].
    at::Tensor forward(const at::Tensor& x, Cache& cache, const Hook* hook) const;
    int num_slots() const { return num_slots_; }

private:
    /// Note [Decode tail]: the layers from upsamples_[tail_begin_] on and the head, cache.speed.tail_frames
    /// frames at a time; the hook then sees each layer's output over the whole chunk, as without the split.
    at::Tensor forward_tail(at::Tensor x, Cache& cache, const Hook* hook) const;
    /// Those layers over all frames of x.
    at::Tensor run_tail(at::Tensor x, Cache& cache, const Hook* hook) const;

    CausalConv3d conv1_;
    std::unique_ptr<ResidualBlock> middle0_, middle2_;
    std::unique_ptr<AttentionBlock> middle1_;
    std::vector<std::unique_ptr<Layer>> upsamples_;
    size_t tail_begin_ = 0;  // the first layer after the last temporal upsample
    RMSNorm head0_;
    CausalConv3d head2_;
    int num_slots_ = 0;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace wan::vae::detail
