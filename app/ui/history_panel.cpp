#include "ui/history_panel.h"

#include "models/history_model.h"
#include "ui/model_content.h"

#include <QDesktopServices>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListView>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QUrl>
#include <QVBoxLayout>

namespace wan::app {

HistoryPanel::HistoryPanel(HistoryModel* model, QWidget* parent) : QWidget(parent), model_(model) {
    auto* layout = new QVBoxLayout(this);
    folderLabel_ = new QLabel(this);
    folderLabel_->setObjectName(QStringLiteral("historyFolderLabel"));
    folderLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(folderLabel_);

    auto* split = new QSplitter(Qt::Vertical, this);
    view_ = new QListView(split);
    view_->setObjectName(QStringLiteral("historyView"));
    view_->setModel(model_);
    view_->setIconSize(QSize(160, 90));
    view_->setUniformItemSizes(true);
    view_->setSpacing(2);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    details_ = new QPlainTextEdit(split);
    details_->setObjectName(QStringLiteral("historyDetails"));
    details_->setReadOnly(true);
    details_->setPlaceholderText(tr("Select a generation to see its parameters."));
    split->addWidget(view_);
    split->addWidget(details_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    layout->addWidget(split, 1);

    auto* buttons = new QHBoxLayout;
    play_ = new QPushButton(tr("Play"), this);
    reuse_ = new QPushButton(tr("Reuse parameters"), this);
    reuse_->setObjectName(QStringLiteral("reuseButton"));
    auto* open = new QPushButton(tr("Open folder"), this);
    delete_ = new QPushButton(tr("Delete…"), this);
    delete_->setObjectName(QStringLiteral("deleteButton"));
    auto* refresh = new QPushButton(tr("Refresh"), this);
    buttons->addWidget(play_);
    buttons->addWidget(reuse_);
    buttons->addWidget(open);
    buttons->addStretch(1);
    buttons->addWidget(refresh);
    buttons->addWidget(delete_);
    layout->addLayout(buttons);

    connect(play_, &QPushButton::clicked, this, &HistoryPanel::playSelected);
    connect(reuse_, &QPushButton::clicked, this, &HistoryPanel::reuseSelected);
    connect(open, &QPushButton::clicked, this, &HistoryPanel::openFolder);
    connect(delete_, &QPushButton::clicked, this, &HistoryPanel::deleteSelected);
    connect(refresh, &QPushButton::clicked, model_, &HistoryModel::refresh);
    connect(view_, &QListView::doubleClicked, this, &HistoryPanel::playSelected);
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this, &HistoryPanel::updateDetails);
    onModelContentChanged(model_, this, &HistoryPanel::updateDetails);
    connect(model_, &HistoryModel::scanned, this, [this](int count) {
        folderLabel_->setText(model_->folder().isEmpty()
                                  ? tr("No output folder")
                                  : tr("%n generation(s) in %1", nullptr, count).arg(model_->folder()));
    });
    updateDetails();
}

int HistoryPanel::currentRow() const {
    const QModelIndex i = view_->currentIndex();
    return i.isValid() ? i.row() : -1;
}

void HistoryPanel::selectRow(int row) {
    if (row < 0 || row >= model_->rowCount()) return;
    view_->setCurrentIndex(model_->index(row));
}

void HistoryPanel::updateDetails() {
    const int row = currentRow();
    const bool has = row >= 0 && row < model_->rowCount();
    play_->setEnabled(has);
    reuse_->setEnabled(has);
    delete_->setEnabled(has);
    details_->setPlainText(has ? HistoryModel::parametersText(model_->entryAt(row)) : QString());
}

void HistoryPanel::playSelected() {
    const int row = currentRow();
    if (row < 0) return;
    const HistoryEntry& e = model_->entryAt(row);
    emit playRequested(e.videoPath, e.posterPath);
}

void HistoryPanel::reuseSelected() {
    const int row = currentRow();
    if (row >= 0) emit reuseRequested(row);
}

void HistoryPanel::deleteSelected() {
    const int row = currentRow();
    if (row < 0) return;
    const HistoryEntry& e = model_->entryAt(row);
    if (confirmDeletes_) {
        const auto answer = QMessageBox::question(
            this, tr("Delete generation"),
            tr("Delete %1 with its poster and parameters?\nThis cannot be undone.")
                .arg(QFileInfo(e.videoPath).fileName()),
            QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel);
        if (answer != QMessageBox::Yes) return;
    }
    QString error;
    if (!model_->removeEntry(row, &error)) emit message(tr("Delete failed: %1").arg(error));
}

void HistoryPanel::openFolder() {
    if (model_->folder().isEmpty()) return;
    QDesktopServices::openUrl(QUrl::fromLocalFile(model_->folder()));
}

}  // namespace wan::app
