// Which GPUs this machine has, for Engine → GPUs…: `nvidia-smi --query-gpu=name,memory.total
// --format=csv,noheader`, parsed. No GPU (or no nvidia-smi) is an empty list, not an error.
#pragma once

#include <QString>
#include <QVector>

namespace wan::app {

struct GpuInfo {
    QString name;
    double memoryGb = 0;  ///< total memory in GiB (nvidia-smi reports MiB)
};

/// Parses nvidia-smi's CSV ("NVIDIA H200, 143771 MiB" per line). Lines that do not parse are skipped.
QVector<GpuInfo> parseNvidiaSmi(const QString& csv);

/// Runs nvidia-smi (at most `timeoutMs`). Empty when it is missing, fails or lists nothing; `*note` then says
/// why in words.
QVector<GpuInfo> probeGpus(QString* note = nullptr, int timeoutMs = 5000);

}  // namespace wan::app
