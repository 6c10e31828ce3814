// The one place that knows QSettings keys (style.md §3.4). Everything else asks this class.
// Uses the application's default QSettings (organisation/application names set by runGui), or an ini file.
#pragma once

#include "cli/model_probe.h"
#include "core/core.h"
#include "launch/memory_options.h"

#include <QByteArray>
#include <QSettings>
#include <QString>

#include <memory>
#include <vector>

namespace wan::app {

class Settings {
public:
    /// The default QSettings of the application (QCoreApplication organisation and application names).
    Settings();
    /// An explicit ini file (tests, portable installs).
    explicit Settings(const QString& iniPath);
    ~Settings();
    Settings(const Settings&) = delete;
    Settings& operator=(const Settings&) = delete;

    /// Where generations are written and the history is read; empty when never set.
    QString outputFolder() const;
    void setOutputFolder(const QString& folder);

    /// The last parameters used for Generate (prompt, negative prompt, size, frames, steps, guide, shift,
    /// seed, solver, preset, LoRAs with the per-expert ones, prompt-extension language). `hasLastRequest()` is
    /// false before the first save.
    bool hasLastRequest() const;
    GenerationRequest lastRequest() const;
    void setLastRequest(const GenerationRequest& request);

    /// File → Recent models: the models opened last, newest first, at most kMaxRecentModels.
    static constexpr int kMaxRecentModels = 8;
    std::vector<ModelChoice> recentModels() const;
    /// Puts `choice` first (moving it up when it was there already) and drops the oldest beyond the limit.
    void addRecentModel(const ModelChoice& choice);
    void setRecentModels(const std::vector<ModelChoice>& models);

    /// Engine → Memory…: the memory options chosen last (defaults before the first choice). A window started as
    /// one process with none of them on its command line loads with these (applySavedMemoryOptions).
    MemoryOptions memoryOptions() const;
    void setMemoryOptions(const MemoryOptions& memory);

    /// View → Live preview: show the video forming while it samples (default on).
    bool livePreview() const;
    void setLivePreview(bool on);

    /// This window's name on shared engines (--connect, X-Wan-Client): drawn at random the first time it is
    /// asked for and kept, so that a restarted window knows the jobs it left on an engine. A value that is not
    /// 1 to 40 letters, digits or '-' (edited by hand) is replaced by a new one.
    QByteArray remoteClientId();

    QByteArray windowGeometry() const;
    void setWindowGeometry(const QByteArray& geometry);
    QByteArray windowState() const;
    void setWindowState(const QByteArray& state);
    QByteArray splitterState(const QString& name) const;
    void setSplitterState(const QString& name, const QByteArray& state);

    void sync();
    QString fileName() const;

private:
    std::unique_ptr<QSettings> settings_;
};

}  // namespace wan::app
