// Internal pieces of the grouping parts (grouping_parts.cpp, grouping_simulations.cpp), exposed
// so unit tests can check each rule against hand computations: KDGQA/DGQA allocation, PGQA
// noise, KV-head pooling, the symmetric eigen-solver behind the MLA simulation.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attnscope/variant_parts.h"

namespace attnscope::grouping_detail {

// Deterministic 64-bit generator (splitmix64) so seeded noise and random repairs are the same
// on every platform and standard library (std::uniform_*_distribution is not).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : m_state(seed) {}
  uint64_t next() {
    uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 random bits (torch.rand's float32 resolution).
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
  // Uniform integer in [0, n), n > 0.
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t m_state;
};

// Mixes several values into one seed (for per-layer / per-call streams).
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c);

// Round half to even (torch.round), e.g. 2.5 -> 2, 3.5 -> 4, -0.5 -> -0.
double round_half_even(double x);

// Frobenius norm of each KV head's keys over all cached tokens: k: [n_key, n_kv, d];
// result: [n_kv], n_j = sqrt(sum_{t, c} k[t, j, c]^2) (torch.norm(k, dim=(P, d)) for batch 1).
std::vector<float> key_frobenius_norms(const float* k, int n_key, int n_kv, int head_dim);

// KDGQA allocation (reference kdgqa.py): norms: [Hkv] -> query heads per KV head, sum = n_head.
// Min-max normalise, a = round_half_even(n_hat / sum(n_hat) * n_head) in float32 as torch does,
// then while sum > H decrement the first argmax, while sum < H increment the first argmin.
// All norms equal (max == min: 0/0 in the reference) -> the native allocation H / Hkv each.
std::vector<int> kdgqa_allocation(const std::vector<float>& norms, int n_head);

// DGQA ratio rule (reference dgqa.py get_ratios_*): weights: [Hkv] -> allocation, sum = n_head.
// a = round_half_even(w / sum(w) * n_head); while sum > H pick a random index and decrement it
// if positive; while sum < H increment a random index. Indices come from `rng`. A zero or
// non-finite weight sum (0/0 in the reference) -> the native allocation.
std::vector<int> dgqa_allocation(const std::vector<float>& weights, int n_head, SplitMix64& rng);

// Contiguous split: the first alloc[0] query heads read KV head 0, the next alloc[1] KV head 1, ...
// alloc: [Hkv] non-negative, summing to n_head; result: [n_head].
std::vector<int> contiguous_kv_of_query(const std::vector<int>& alloc, int n_head);

// Mean of contiguous groups of KV heads: src: [n_key, n_kv, d] -> [n_key, n_groups, d], group g
// averages heads g*(n_kv/n_groups) .. (g+1)*(n_kv/n_groups)-1. n_groups divides n_kv.
std::vector<float> pool_kv_heads(const float* src, int n_key, int n_kv, int head_dim, int n_groups);

// PGQA noise for one group (reference pgqa.py get_gaussian): o: [rows, cols] row-major (one row
// per query head of the group, cols = P * d). Returns noise [rows, cols]: uniform [0, 1) draws
// from `rng` (row-major order), element (i, i) zeroed for i < min(rows, cols), each row
// standardised (unbiased std; a zero std is replaced by 1), then rescaled to the row mean and
// unbiased std of `o`.
std::vector<float> pgqa_noise(const float* o, int rows, int cols, SplitMix64& rng);

// Symmetric eigen-decomposition by Householder tridiagonalisation and implicit QR with
// Wilkinson shifts. a: [n, n] row-major, symmetric (only read). eigenvalues: [n] descending;
// eigenvectors: [n_vectors, n], row i is the unit eigenvector of eigenvalues[i] (the top
// n_vectors only; -1 = all n). Throws Error(Runtime) if the iteration does not converge.
void symmetric_eigen(const std::vector<double>& a, int n, std::vector<double>& eigenvalues,
                     std::vector<double>& eigenvectors, int n_vectors = -1);

// Factories of the two simulations (grouping_simulations.cpp); config validated by the caller's
// registry, model-dependent ranges checked here.
std::unique_ptr<GroupingPart> make_sqa_part(const PartConfig& config, const Model& model);
std::unique_ptr<GroupingPart> make_mla_part(const PartConfig& config, const Model& model);

// Checks that ctx describes a layer of `config`-shaped attention with all pointers set;
// throws Error(Runtime) naming `part` otherwise.
void check_context(const LayerContext& ctx, const char* part);

}  // namespace attnscope::grouping_detail
