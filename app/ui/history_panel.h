// The History tab: past generations (thumbnails + parameters) with play, reuse, open folder and delete.
#pragma once

#include <QWidget>

class QListView;
class QPlainTextEdit;
class QPushButton;
class QLabel;

namespace wan::app {

class HistoryModel;
struct HistoryEntry;

class HistoryPanel : public QWidget {
    Q_OBJECT
public:
    explicit HistoryPanel(HistoryModel* model, QWidget* parent = nullptr);

    QListView* view() const { return view_; }
    QPlainTextEdit* detailsView() const { return details_; }
    int currentRow() const;
    void selectRow(int row);
    /// Whether Delete asks first (true; tests turn it off).
    void setConfirmDeletes(bool on) { confirmDeletes_ = on; }

public slots:
    void playSelected();
    void reuseSelected();
    void deleteSelected();
    void openFolder();

signals:
    void playRequested(const QString& videoPath, const QString& posterPath);
    void reuseRequested(int row);
    void message(const QString& text);

private:
    void updateDetails();

    HistoryModel* model_;
    QListView* view_ = nullptr;
    QPlainTextEdit* details_ = nullptr;
    QLabel* folderLabel_ = nullptr;
    QPushButton* play_ = nullptr;
    QPushButton* reuse_ = nullptr;
    QPushButton* delete_ = nullptr;
    bool confirmDeletes_ = true;
};

}  // namespace wan::app
