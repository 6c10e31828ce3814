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
    /// Sent as X-Wan-Client with each job: the server lists it with the job, so that the window's RemoteLink
    /// tells its own jobs from other clients'. One per process (parseRemoteEndpoint makes a new one).
    QByteArray clientId;
    QString label() const { return QStringLiteral("%1:%2").arg(host).arg(port); }
};

/// Parses `--connect HOST:PORT` (PORT defaults to 7860) and draws a new client id. Throws wan::Error naming
/// the option.
RemoteEndpoint parseRemoteEndpoint(const std::string& text);

/// The body the backend POSTs to /api/jobs for `request`: its JSON as a --batch line, without the keys that are
/// local paths (output folder, latents, noise) or this side's job id.
QByteArray remoteJobBody(const GenerationRequest& request);

/// The backend for --connect: jobs are POSTed (retried while the engine is unreachable; the server takes a
/// repeated POST of the same job once), polled (progress, ETA; a lost connection is logged and retried with
/// back-off, the job keeps running on the server), cancelled with DELETE, and their files fetched into the
/// request's local output folder so that the window plays them from disk as usual. The live preview comes
/// from /api/events?preview=1, "Enhance prompt" from POST /api/extend. The window's view of the rest of the
/// shared engine (other clients' jobs, the link's state, the history) is RemoteLink's (remote/remote_link.h).
std::unique_ptr<EngineBackend> makeRemoteBackend(const RemoteEndpoint& endpoint);

}  // namespace wan::app
