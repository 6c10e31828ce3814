#include "models/history_model.h"

#include "models/progress_format.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QGuiApplication>
#include <QImageReader>
#include <QPixmap>
#include <QTimer>

#include <algorithm>

namespace wan::app {

namespace {
constexpr int kThumbWidth = 160;
constexpr int kThumbHeight = 90;

/// The first existing file among: the recorded path (absolute, or relative to the working directory), the
/// recorded file name beside the JSON, the JSON's stem with `suffix`.
QString locate(const std::string& recorded, const QFileInfo& json, const QString& suffix) {
    QStringList candidates;
    if (!recorded.empty()) {
        const QString p = QString::fromStdString(recorded);
        candidates << p << json.dir().filePath(QFileInfo(p).fileName());
    }
    candidates << json.dir().filePath(json.completeBaseName() + suffix);
    for (const QString& c : candidates) {
        QFileInfo fi(c);
        if (fi.isFile()) return fi.absoluteFilePath();
    }
    return {};
}
}  // namespace

HistoryModel::HistoryModel(QObject* parent) : QAbstractListModel(parent) {}

HistoryModel::~HistoryModel() = default;

void HistoryModel::setFolder(const QString& folder) {
    if (watcher_ && !folder_.isEmpty()) watcher_->removePath(folder_);
    folder_ = folder;
    if (watcher_ && QFileInfo(folder_).isDir()) watcher_->addPath(folder_);
    refresh();
}

void HistoryModel::setWatching(bool on) {
    if (on == isWatching()) return;
    if (!on) {
        delete watcher_;
        watcher_ = nullptr;
        return;
    }
    watcher_ = new QFileSystemWatcher(this);
    if (!debounce_) {
        debounce_ = new QTimer(this);
        debounce_->setSingleShot(true);
        debounce_->setInterval(300);  // a generation writes three files: scan once
        connect(debounce_, &QTimer::timeout, this, &HistoryModel::refresh);
    }
    connect(watcher_, &QFileSystemWatcher::directoryChanged, debounce_, qOverload<>(&QTimer::start));
    if (QFileInfo(folder_).isDir()) watcher_->addPath(folder_);
}

void HistoryModel::refresh() {
    std::vector<HistoryEntry> found;
    QStringList errors;
    QDir dir(folder_);
    if (!folder_.isEmpty() && dir.exists()) {
        const QFileInfoList files = dir.entryInfoList({QStringLiteral("*.json")}, QDir::Files | QDir::Readable);
        for (const QFileInfo& fi : files) {
            QFile f(fi.absoluteFilePath());
            if (!f.open(QIODevice::ReadOnly)) {
                errors << QStringLiteral("%1: cannot be read").arg(fi.fileName());
                continue;
            }
            if (f.size() > 4 * 1024 * 1024) continue;  // not a generation record
            HistoryEntry e;
            try {
                e.meta = GenerationSidecar::from_json(f.readAll().toStdString(), fi.fileName().toStdString());
            } catch (const std::exception& ex) {
                errors << QString::fromStdString(ex.what());
                continue;
            }
            e.jsonPath = fi.absoluteFilePath();
            e.videoPath = locate(e.meta.result.video_path, fi, QStringLiteral(".mp4"));
            if (e.videoPath.isEmpty()) {
                errors << QStringLiteral("%1: no video beside it").arg(fi.fileName());
                continue;
            }
            e.posterPath = locate(e.meta.result.poster_path, fi, QStringLiteral(".png"));
            e.modified = QFileInfo(e.videoPath).lastModified();
            found.push_back(std::move(e));
        }
        // newest first; ties by name so the order is stable
        std::sort(found.begin(), found.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
            if (a.modified != b.modified) return a.modified > b.modified;
            return a.jsonPath > b.jsonPath;
        });
    }
    if (watcher_ && QFileInfo(folder_).isDir() && !watcher_->directories().contains(folder_))
        watcher_->addPath(folder_);
    beginResetModel();
    entries_ = std::move(found);
    scanErrors_ = errors;
    thumbnails_.clear();
    endResetModel();
    emit scanned(static_cast<int>(entries_.size()));
}

int HistoryModel::rowOfVideo(const QString& videoPath) const {
    const QString target = QFileInfo(videoPath).absoluteFilePath();
    for (size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].videoPath == target) return static_cast<int>(i);
    }
    return -1;
}

bool HistoryModel::removeEntry(int row, QString* error) {
    if (row < 0 || row >= rowCount()) {
        if (error) *error = tr("no such history entry");
        return false;
    }
    const HistoryEntry& e = entries_[static_cast<size_t>(row)];
    QStringList failedFiles;
    for (const QString& path : {e.videoPath, e.posterPath, e.jsonPath}) {
        if (path.isEmpty() || !QFileInfo::exists(path)) continue;
        if (!QFile::remove(path)) failedFiles << path;
    }
    const bool gone = !QFileInfo::exists(e.videoPath) && !QFileInfo::exists(e.jsonPath);
    if (gone) {
        beginRemoveRows(QModelIndex(), row, row);
        thumbnails_.remove(e.posterPath);
        entries_.erase(entries_.begin() + row);
        endRemoveRows();
    }
    if (!failedFiles.isEmpty()) {
        if (error) *error = tr("could not delete %1").arg(failedFiles.join(QStringLiteral(", ")));
        return false;
    }
    return true;
}

QString HistoryModel::parametersText(const HistoryEntry& entry) {
    const GenerationRequest& r = entry.meta.request;
    const GenerationResult& res = entry.meta.result;
    QStringList lines;
    lines << tr("Prompt: %1").arg(QString::fromStdString(res.prompt_used.empty() ? r.prompt : res.prompt_used));
    if (!r.original_prompt.empty())
        lines << tr("Original prompt: %1").arg(QString::fromStdString(r.original_prompt));
    lines << tr("Negative prompt: %1")
                 .arg(r.negative_prompt.empty() ? tr("(default)") : QString::fromStdString(r.negative_prompt));
    const QString size = r.width > 0 && r.height > 0 ? QStringLiteral("%1*%2").arg(r.width).arg(r.height) : tr("default");
    auto num = [](double v) { return v < 0 ? QObject::tr("default") : QString::number(v); };
    auto intOr = [](int v) { return v <= 0 ? QObject::tr("default") : QString::number(v); };
    lines << tr("Size %1 · frames %2 · steps %3 · guide %4 · shift %5 · %6")
                 .arg(size, intOr(r.frame_num), intOr(r.sample_steps), num(r.guide_scale), num(r.sample_shift),
                      QString::fromStdString(r.solver));
    QString seed = res.seed_used >= 0 ? QString::number(res.seed_used)
                                      : (r.seed >= 0 ? QString::number(r.seed) : tr("random"));
    QString line = tr("Seed %1").arg(seed);
    if (res.seconds > 0) line += tr(" · took %1").arg(QString::fromStdString(formatDuration(res.seconds)));
    lines << line;
    if (!res.message.empty()) lines << tr("Note: %1").arg(QString::fromStdString(res.message));
    lines << tr("Video: %1").arg(entry.videoPath);
    return lines.join(QLatin1Char('\n'));
}

int HistoryModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(entries_.size());
}

QVariant HistoryModel::thumbnail(const HistoryEntry& entry) const {
    if (entry.posterPath.isEmpty()) return {};
    auto it = thumbnails_.constFind(entry.posterPath);
    if (it != thumbnails_.constEnd()) return *it;
    QImageReader reader(entry.posterPath);
    QSize size = reader.size();
    if (size.isValid()) reader.setScaledSize(size.scaled(kThumbWidth, kThumbHeight, Qt::KeepAspectRatio));
    QImage image = reader.read();
    QIcon icon;
    if (!image.isNull() && qobject_cast<QGuiApplication*>(QCoreApplication::instance()))
        icon = QIcon(QPixmap::fromImage(image));
    thumbnails_.insert(entry.posterPath, icon);
    return icon;
}

QVariant HistoryModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const HistoryEntry& e = entries_[static_cast<size_t>(index.row())];
    const GenerationRequest& r = e.meta.request;
    switch (role) {
        case Qt::DisplayRole: {
            QString prompt = QString::fromStdString(e.meta.result.prompt_used.empty() ? r.prompt
                                                                                       : e.meta.result.prompt_used)
                                 .simplified();
            if (prompt.size() > 60) prompt = prompt.left(59) + QChar(0x2026);
            return QStringLiteral("%1\n%2").arg(prompt, QLocale().toString(e.modified, QLocale::ShortFormat));
        }
        case Qt::DecorationRole: return thumbnail(e);
        case Qt::ToolTipRole:
        case ParametersTextRole: return parametersText(e);
        case VideoPathRole: return e.videoPath;
        case PosterPathRole: return e.posterPath;
        case JsonPathRole: return e.jsonPath;
        case PromptRole: return QString::fromStdString(r.prompt);
        case SeedUsedRole: return static_cast<qlonglong>(e.meta.result.seed_used);
        case SizeRole:
            return r.width > 0 && r.height > 0 ? QStringLiteral("%1*%2").arg(r.width).arg(r.height) : QString();
        case ModifiedRole: return e.modified;
        default: return {};
    }
}

}  // namespace wan::app
