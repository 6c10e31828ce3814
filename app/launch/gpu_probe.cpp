#include "launch/gpu_probe.h"

#include <QObject>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>

namespace wan::app {

QVector<GpuInfo> parseNvidiaSmi(const QString& csv) {
    QVector<GpuInfo> out;
    static const QRegularExpression line(QStringLiteral("^\\s*(.+?)\\s*,\\s*(\\d+)\\s*MiB\\s*$"));
    for (const QString& text : csv.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) {
        const QRegularExpressionMatch m = line.match(text);
        if (!m.hasMatch()) continue;
        out.push_back({m.captured(1), m.captured(2).toDouble() / 1024.0});
    }
    return out;
}

QVector<GpuInfo> probeGpus(QString* note, int timeoutMs) {
    const QString smi = QStandardPaths::findExecutable(QStringLiteral("nvidia-smi"));
    if (smi.isEmpty()) {
        if (note) *note = QObject::tr("No NVIDIA GPU found (nvidia-smi is not installed).");
        return {};
    }
    QProcess p;
    p.start(smi, {QStringLiteral("--query-gpu=name,memory.total"), QStringLiteral("--format=csv,noheader")});
    if (!p.waitForFinished(timeoutMs) || p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        if (p.state() != QProcess::NotRunning) p.kill();
        if (note)
            *note = QObject::tr("No GPU found: nvidia-smi failed (%1).")
                        .arg(QString::fromLocal8Bit(p.readAllStandardError()).trimmed());
        return {};
    }
    QVector<GpuInfo> gpus = parseNvidiaSmi(QString::fromLocal8Bit(p.readAllStandardOutput()));
    if (gpus.isEmpty() && note) *note = QObject::tr("No NVIDIA GPU found (nvidia-smi lists none).");
    return gpus;
}

}  // namespace wan::app
