// Helpers shared by the app tests: the fake backend, temporary settings, sample outputs.
#pragma once

#include "core/sidecar.h"
#include "session/engine_session.h"
#include "session/fake_engine_backend.h"

#include <QColor>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QSettings>
#include <QString>

#include <memory>

namespace wan::app::test {

/// QSettings in an ini file under `dir`, with a test organisation name (never the user's real settings).
inline void useTemporarySettings(const QString& dir) {
    QCoreApplication::setOrganizationName(QStringLiteral("WanStudioTest"));
    QCoreApplication::setApplicationName(QStringLiteral("WanStudioTest"));
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, dir);
}

/// Fast fake: 4 steps of `stepMs`.
inline FakeBackendConfig fastFake(int stepMs = 5) {
    FakeBackendConfig c;
    c.stepDelayMs = stepMs;
    c.defaultSteps = 4;
    return c;
}

inline std::unique_ptr<EngineSession> makeSession(const FakeBackendConfig& config) {
    return std::make_unique<EngineSession>(std::make_unique<FakeEngineBackend>(config));
}

inline GenerationRequest requestFor(const QString& prompt, const QString& outputDir = QString(), int steps = 0) {
    GenerationRequest r;
    r.prompt = prompt.toStdString();
    r.output_dir = outputDir.toStdString();
    r.sample_steps = steps;
    return r;
}

/// A finished generation as the engine leaves it: <stem>.mp4 (dummy bytes), <stem>.png, <stem>.json.
inline void writeSampleOutput(const QString& dir, const QString& stem, const QString& prompt, qint64 seed,
                              const QDateTime& when) {
    QDir().mkpath(dir);
    const QString video = QDir(dir).filePath(stem + QStringLiteral(".mp4"));
    const QString poster = QDir(dir).filePath(stem + QStringLiteral(".png"));
    const QString json = QDir(dir).filePath(stem + QStringLiteral(".json"));
    {
        QFile f(video);
        f.open(QIODevice::WriteOnly);
        f.write("dummy mp4");
    }
    QImage image(32, 32, QImage::Format_RGB32);
    image.fill(QColor(40, 120, 200));
    image.save(poster, "PNG");
    GenerationRequest r = GenerationRequest::from_json(
        R"({"size": "832*480", "frame_num": 81, "sample_steps": 50, "sample_shift": 5.0, "sample_guide_scale": 6.0})");
    r.prompt = prompt.toStdString();
    GenerationResult res;
    res.status = JobStatus::Ok;
    res.seed_used = seed;
    res.prompt_used = r.prompt;
    res.video_path = video.toStdString();
    res.poster_path = poster.toStdString();
    res.json_path = json.toStdString();
    res.seconds = 42;
    {
        QFile f(json);
        f.open(QIODevice::WriteOnly);
        const std::string record = make_sidecar(r, res, EngineInfo{}, "test").to_json();
        f.write(record.data(), static_cast<qint64>(record.size()));
    }
    for (const QString& path : {video, poster, json}) {
        QFile f(path);
        f.open(QIODevice::ReadWrite);
        f.setFileTime(when, QFileDevice::FileModificationTime);
    }
}

}  // namespace wan::app::test
