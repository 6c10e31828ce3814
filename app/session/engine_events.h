// The signals through which an engine reports, declared once: EngineWorker emits them on the engine thread
// and EngineSession, connected to its worker, delivers them to the GUI thread (adding stopped()).
#pragma once

#include "session/metatypes.h"

#include <QObject>
#include <QString>

namespace wan::app {

class EngineEvents : public QObject {
    Q_OBJECT
public:
    using QObject::QObject;

signals:
    void started(const wan::EngineInfo& info);
    void startFailed(const QString& message);
    /// While the models load: bytes over the whole load and the file being read. Coalesced to at most 10 per
    /// second, except that every component change and the last report are delivered.
    void loadProgress(const wan::LoadProgress& progress);
    /// The load was cancelled (cancelStart()): the engine is not loaded; queued jobs wait (for a shutdown).
    void startCancelled(const QString& message);
    void jobStarted(qint64 jobId);
    /// Coalesced to at most 10 per second, except that every stage change is delivered.
    void progress(qint64 jobId, const wan::ProgressInfo& info);
    /// Status Ok or Cancelled.
    void finished(qint64 jobId, const wan::GenerationResult& result);
    void failed(qint64 jobId, const QString& message);
    void infoUpdated(const wan::EngineInfo& info);
    void promptExtended(const QString& original, const QString& extended);
    void extendFailed(const QString& original, const QString& reason);
};

}  // namespace wan::app
