// Private: the decode's frame rows split over ranks — which rows each rank owns, and the RowExchange over a
// dist::Communicator (halo rows from the neighbours, whole frames by all-gather). See Note [Decode across
// the ranks] in vae.cpp.
#pragma once

#include "vae/vae_modules.h"

#include <cstdint>
#include <vector>

namespace wan::dist {
class Communicator;
}

namespace wan::vae::detail {

/// Latent rows [start[i], start[i] + count[i]) belong to rank i; counts differ by at most one (the first
/// rows % ranks ranks take one more), every count ≥ 1.
struct RowSplit {
    std::vector<int64_t> start, count;
    /// `rows` over `ranks` (1 ≤ ranks ≤ rows, else a wan::Error naming both).
    static RowSplit even(int64_t rows, int ranks);
};

/// RowExchange over `comm` (rank i of comm owns split part i). Tensors stay on their device: the
/// communicator moves them (MPI for CPU tensors, NCCL for CUDA ones). Every call is collective over comm.
class CommRowExchange final : public RowExchange {
public:
    CommRowExchange(dist::Communicator& comm, RowSplit split);
    /// Halo rows through two neighbour shifts (down and up the rank order) started together.
    at::Tensor with_halo(const at::Tensor& x, int64_t halo) override;
    /// All-gather of the slabs padded to the tallest one, then trimmed and joined in rank order.
    at::Tensor whole_frame(const at::Tensor& x) override;
    const RowSplit& split() const { return split_; }

private:
    /// Rows of the current feature map per latent row (1, 2, 4, 8 through the upsamples), from x's height.
    int64_t scale_of(const at::Tensor& x) const;

    dist::Communicator& comm_;
    RowSplit split_;
};

}  // namespace wan::vae::detail
