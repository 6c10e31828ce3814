// A sequence-parallel world simulated with threads, for the DiT tests: every "rank" is a thread running its own
// WanModel; collectives are all-gathers through shared memory, and attention gathers K/V (exact, like Ulysses
// followed by local attention).
#pragma once

#include "dit/dit.h"

#include <ATen/ATen.h>

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace wan::test {

class FakeComm {
public:
    explicit FakeComm(int world) : world_(world), slots_(world) {}
    std::vector<at::Tensor> all_gather(int rank, const at::Tensor& t) {
        std::unique_lock<std::mutex> lock(mu_);
        slots_[rank] = t;
        const int64_t gen = gen_;
        if (++arrived_ == world_) {
            arrived_ = 0;
            result_ = slots_;
            ++gen_;
            cv_.notify_all();
        } else {
            cv_.wait(lock, [&] { return gen_ != gen; });
        }
        return result_;
    }

private:
    int world_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<at::Tensor> slots_, result_;
    int arrived_ = 0;
    int64_t gen_ = 0;
};

class FakeSequenceParallel : public wan::dit::SequenceParallel {
public:
    FakeSequenceParallel(FakeComm& comm, int world, int rank) : comm_(comm), world_(world), rank_(rank) {}
    int world() const override { return world_; }
    int rank() const override { return rank_; }
    at::Tensor self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len) override {
        at::Tensor kf = at::cat(comm_.all_gather(rank_, k), 1);
        at::Tensor vf = at::cat(comm_.all_gather(rank_, v), 1);
        return wan::dit::attention(q, kf, vf, k_len, attention_backend(), attention_fp8());
    }
    at::Tensor gather_sequence(const at::Tensor& local) override { return at::cat(comm_.all_gather(rank_, local), 1); }
    void all_reduce_sum(at::Tensor& t) override {
        ++reduces;
        t = at::stack(comm_.all_gather(rank_, t)).sum(0);
    }
    int reduces = 0;  ///< how many all_reduce_sum calls this rank made

private:
    FakeComm& comm_;
    int world_, rank_;
};

/// A simulated world: one WanModel per rank over the same weights, each with its FakeSequenceParallel.
class FakeWorld {
public:
    FakeWorld(const io::WanConfig& config, const io::TensorStore& store, int world) : comm_(world) {
        for (int r = 0; r < world; ++r) {
            models_.push_back(std::make_unique<dit::WanModel>(config, store));
            sps_.push_back(std::make_shared<FakeSequenceParallel>(comm_, world, r));
            models_.back()->set_sequence_parallel(sps_.back());
        }
    }
    int size() const { return static_cast<int>(models_.size()); }
    dit::WanModel& model(int rank) { return *models_[static_cast<size_t>(rank)]; }
    const FakeSequenceParallel& sequence_parallel(int rank) const { return *sps_[static_cast<size_t>(rank)]; }

    /// Runs fn(rank) on one thread per rank (the ranks meet in the collectives) and, once all have ended,
    /// rethrows the first rank's exception, if any.
    template <class Fn>
    void run(Fn&& fn) {
        std::vector<std::exception_ptr> errors(models_.size());
        std::vector<std::thread> threads;
        for (int r = 0; r < size(); ++r)
            threads.emplace_back([&, r] {
                try {
                    fn(r);
                } catch (...) {
                    errors[static_cast<size_t>(r)] = std::current_exception();
                }
            });
        for (auto& t : threads) t.join();
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
    }

private:
    FakeComm comm_;
    std::vector<std::unique_ptr<dit::WanModel>> models_;
    std::vector<std::shared_ptr<FakeSequenceParallel>> sps_;
};

}  // namespace wan::test
