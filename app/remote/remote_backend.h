// `wanstudio --connect HOST:PORT`: an EngineBackend whose engine runs on another machine behind
// `wanstudio --listen`. The window and EngineSession are unchanged; every call still comes from the session's
// engine thread, which blocks on HTTP here exactly as it blocks on MPI in the local backend.
#pragma once

#include "session/engine_backend.h"

#include <QByteArray>
#include <QString>

#include <memory>

namespace wan::app {

struct RemoteEndpoint {
    QString host = QStringLiteral("127.0.0.1");
    quint16 port = 7860;
    QByteArray token;  ///< sent as "Authorization: Bearer TOKEN" when not empty
    /// Who this is on the engine. A window keeps its id in its settings (Settings::remoteClientId), so that a
    /// restarted window knows the jobs it left on the engine; other front ends (--batch) draw one per process.
    QByteArray clientId;
    /// Drawn per process: jobs are sent as client "clientId.runId" (clientHeader), so that this run's jobs
    /// (followed by its session) are told from an earlier run's (followed by RemoteLink), and the session's
    /// job ids, which start at 1 in every run, never make a new job look like a repeated POST of an old one.
    QByteArray runId;
    QString label() const { return QStringLiteral("%1:%2").arg(host).arg(port); }
    /// The X-Wan-Client header: "clientId.runId".
    QByteArray clientHeader() const { return clientId + '.' + runId; }
    /// True when the API's "client" of a job names this client, in this run or an earlier one.
    bool isMine(const QString& client) const { return client.startsWith(QString::fromLatin1(clientId + '.')); }
};

/// Parses `--connect HOST:PORT` (PORT defaults to 7860) and draws a new client id and run id. Throws
/// wan::Error naming the option.
RemoteEndpoint parseRemoteEndpoint(const std::string& text);

/// The body the backend POSTs to /api/jobs for `request`: its JSON as a --batch line, without the keys that are
/// local paths (output folder, latents, noise) or this side's job id.
QByteArray remoteJobBody(const GenerationRequest& request);

/// The backend for --connect: a job is reported as Stage::Queued (with its place in the engine's queue) until
/// the engine starts it, then with the engine's progress and ETA. Jobs are POSTed (retried while the engine is unreachable; the server takes a
/// repeated POST of the same job once), polled (progress, ETA; a lost connection is logged and retried with
/// back-off, the job keeps running on the server), cancelled with DELETE, and their files fetched into the
/// request's local output folder so that the window plays them from disk as usual. The live preview comes
/// from /api/events?preview=1, "Enhance prompt" from POST /api/extend. The window's view of the rest of the
/// shared engine (other clients' jobs, the link's state, the history) is RemoteLink's (remote/remote_link.h).
std::unique_ptr<EngineBackend> makeRemoteBackend(const RemoteEndpoint& endpoint);

}  // namespace wan::app
