// Past generations in the output folder: one row per JSON record with a video beside it, newest first.
// Thumbnails are the PNG posters, loaded lazily. Deleting removes video + poster + JSON.
#pragma once

#include "core/sidecar.h"

#include <QAbstractListModel>
#include <QDateTime>
#include <QHash>
#include <QIcon>
#include <QString>
#include <QStringList>

#include <vector>

class QFileSystemWatcher;
class QTimer;

namespace wan::app {

struct HistoryEntry {
    QString jsonPath;
    QString videoPath;
    QString posterPath;  ///< empty when there is no poster
    QDateTime modified;
    GenerationSidecar meta;  ///< the JSON record
};

class HistoryModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum Role {
        VideoPathRole = Qt::UserRole + 1,
        PosterPathRole,
        JsonPathRole,
        PromptRole,
        SeedUsedRole,      ///< qlonglong
        SizeRole,          ///< "W*H" (empty when the model default was used)
        ParametersTextRole,  ///< multi-line summary of every parameter
        ModifiedRole,      ///< QDateTime
    };

    explicit HistoryModel(QObject* parent = nullptr);
    ~HistoryModel() override;

    /// Scans `folder` (not recursive). An empty or missing folder gives an empty model.
    void setFolder(const QString& folder);
    QString folder() const { return folder_; }
    /// Re-scans the folder now.
    void refresh();
    /// Re-scans (debounced) whenever the folder changes.
    void setWatching(bool on);
    bool isWatching() const { return watcher_ != nullptr; }

    const HistoryEntry& entryAt(int row) const { return entries_.at(static_cast<size_t>(row)); }
    int rowOfVideo(const QString& videoPath) const;  ///< −1 when absent
    /// Records skipped by the last scan ("file: reason").
    QStringList scanErrors() const { return scanErrors_; }

    /// Deletes the video, poster and JSON of a row (the caller asks for confirmation). On failure returns
    /// false and names the file in *error; the row is removed when the video and JSON are gone.
    bool removeEntry(int row, QString* error = nullptr);

    /// Human-readable summary of a record's parameters (also ParametersTextRole).
    static QString parametersText(const HistoryEntry& entry);

    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;

signals:
    void scanned(int count);

private:
    QVariant thumbnail(const HistoryEntry& entry) const;

    QString folder_;
    std::vector<HistoryEntry> entries_;
    QStringList scanErrors_;
    mutable QHash<QString, QIcon> thumbnails_;
    QFileSystemWatcher* watcher_ = nullptr;
    QTimer* debounce_ = nullptr;
};

}  // namespace wan::app
