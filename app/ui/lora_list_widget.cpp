#include "ui/lora_list_widget.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include <utility>

namespace wan::app {

namespace {
constexpr int kFileColumn = 0;      // check box (enabled) + file name; the full path in Qt::UserRole
constexpr int kStrengthColumn = 1;  // a QDoubleSpinBox
constexpr int kExpertColumn = 2;    // a QComboBox (LoraExpert as its data); shown for two-expert models only

QComboBox* newExpertBox(QWidget* parent, LoraExpert expert) {
    auto* box = new QComboBox(parent);
    box->addItem(QObject::tr("Both"), static_cast<int>(LoraExpert::Both));
    box->addItem(QObject::tr("High noise"), static_cast<int>(LoraExpert::HighNoise));
    box->addItem(QObject::tr("Low noise"), static_cast<int>(LoraExpert::LowNoise));
    box->setCurrentIndex(box->findData(static_cast<int>(expert)));
    return box;
}
}  // namespace

LoraListWidget::LoraListWidget(QWidget* parent) : QWidget(parent) {
    auto* column = new QVBoxLayout(this);
    column->setContentsMargins(0, 0, 0, 0);
    table_ = new QTableWidget(0, 3, this);
    table_->setObjectName(QStringLiteral("loraTable"));
    table_->setHorizontalHeaderLabels({tr("LoRA"), tr("Strength"), tr("Expert")});
    table_->horizontalHeader()->setSectionResizeMode(kFileColumn, QHeaderView::Stretch);
    table_->horizontalHeader()->setSectionResizeMode(kStrengthColumn, QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(kExpertColumn, QHeaderView::ResizeToContents);
    table_->horizontalHeaderItem(kExpertColumn)
        ->setToolTip(tr("Wan2.2 A14B: merge into both experts, or only into the high-noise expert (the early steps) "
                        "or the low-noise one (the late steps); accelerator LoRAs come as such a pair"));
    table_->verticalHeader()->setVisible(false);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setMaximumHeight(110);
    table_->setToolTip(tr("LoRAs merged into the model for the job, top to bottom; untick one to leave it out"));
    column->addWidget(table_);
    auto* buttons = new QHBoxLayout;
    add_ = new QToolButton(this);
    add_->setObjectName(QStringLiteral("addLoraButton"));
    add_->setText(tr("Add LoRA…"));
    remove_ = new QToolButton(this);
    remove_->setObjectName(QStringLiteral("removeLoraButton"));
    remove_->setText(tr("Remove"));
    buttons->addWidget(add_);
    buttons->addWidget(remove_);
    buttons->addStretch(1);
    column->addLayout(buttons);
    hiddenNote_ = new QLabel(this);
    hiddenNote_->setObjectName(QStringLiteral("loraHiddenNote"));
    hiddenNote_->setWordWrap(true);
    column->addWidget(hiddenNote_);
    updateExpertView();
    connect(add_, &QToolButton::clicked, this, &LoraListWidget::browseForFile);
    connect(remove_, &QToolButton::clicked, this, [this] {
        const int row = table_->currentRow();  // a row hidden since it was selected stays
        if (row >= 0 && !table_->isRowHidden(row)) removeRow(row);
    });
}

std::vector<LoraSpec> LoraListWidget::loras(LoraExpert expert) const {
    std::vector<LoraSpec> out;
    for (int row = 0; row < table_->rowCount(); ++row) {
        const QTableWidgetItem* item = table_->item(row, kFileColumn);
        if (!item || item->checkState() != Qt::Checked || expertOf(row) != expert) continue;
        const auto* strength = qobject_cast<const QDoubleSpinBox*>(table_->cellWidget(row, kStrengthColumn));
        out.push_back({item->data(Qt::UserRole).toString().toStdString(), strength ? strength->value() : 1.0});
    }
    return out;
}

void LoraListWidget::setLoras(const std::vector<LoraSpec>& both, const std::vector<LoraSpec>& high,
                              const std::vector<LoraSpec>& low) {
    table_->setRowCount(0);
    for (const auto& [list, expert] : {std::make_pair(&both, LoraExpert::Both),
                                       std::make_pair(&high, LoraExpert::HighNoise),
                                       std::make_pair(&low, LoraExpert::LowNoise)})
        for (const LoraSpec& l : *list) addLora(l, true, expert);
}

void LoraListWidget::addLora(const LoraSpec& lora, bool enabled, LoraExpert expert) {
    const int row = table_->rowCount();
    table_->insertRow(row);
    const QString path = QString::fromStdString(lora.path);
    auto* item = new QTableWidgetItem(QFileInfo(path).fileName());
    item->setData(Qt::UserRole, path);
    item->setToolTip(path);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable);
    item->setCheckState(enabled ? Qt::Checked : Qt::Unchecked);
    table_->setItem(row, kFileColumn, item);
    auto* strength = new QDoubleSpinBox(table_);
    strength->setRange(-10.0, 10.0);  // negative strengths are allowed (they subtract the LoRA)
    strength->setDecimals(3);
    strength->setSingleStep(0.05);
    strength->setValue(lora.strength);
    table_->setCellWidget(row, kStrengthColumn, strength);
    table_->setCellWidget(row, kExpertColumn, newExpertBox(table_, expert));
    updateExpertView();
}

void LoraListWidget::removeRow(int row) {
    if (row < 0 || row >= table_->rowCount()) return;
    table_->removeRow(row);
    updateExpertView();
}

LoraExpert LoraListWidget::expertOf(int row) const {
    const auto* box = qobject_cast<const QComboBox*>(table_->cellWidget(row, kExpertColumn));
    return box ? static_cast<LoraExpert>(box->currentData().toInt()) : LoraExpert::Both;
}

void LoraListWidget::setTwoExperts(bool twoExperts) {
    twoExperts_ = twoExperts;
    updateExpertView();
}

void LoraListWidget::updateExpertView() {
    table_->setColumnHidden(kExpertColumn, !twoExperts_);
    int hidden = 0;
    for (int row = 0; row < table_->rowCount(); ++row) {
        const bool oneExpertOnly = expertOf(row) != LoraExpert::Both;
        table_->setRowHidden(row, oneExpertOnly && !twoExperts_);
        if (oneExpertOnly && !twoExperts_) ++hidden;
    }
    // Never a LoRA left out silently: the rows are hidden, the note says so.
    hiddenNote_->setText(hidden == 1 ? tr("1 LoRA for one expert is hidden and not used: per-expert LoRAs need a "
                                          "two-expert model (Wan2.2 A14B)")
                                     : tr("%1 LoRAs for one expert are hidden and not used: per-expert LoRAs need a "
                                          "two-expert model (Wan2.2 A14B)").arg(hidden));
    hiddenNote_->setVisible(hidden > 0);
}

void LoraListWidget::browseForFile() {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Add LoRA"), QString(),
                                                            tr("LoRA files (*.safetensors);;All files (*)"));
    for (const QString& f : files) addLora({f.toStdString(), 1.0});
}

}  // namespace wan::app
