#include "ui/open_model_dialog.h"

#include <QApplication>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QThread>
#include <QToolButton>
#include <QVBoxLayout>

namespace wan::app {

namespace {
const QString kModelFilter = QObject::tr("Model files (*.safetensors *.pth *.json);;All files (*)");

QString componentsText(const ModelProbe& p) {
    QStringList lines;
    for (const ProbedComponent& c : p.components)
        lines << QStringLiteral("%1: %2\n    %3").arg(QString::fromStdString(c.role), QString::fromStdString(c.path),
                                                   QString::fromStdString(c.description));
    return lines.join(QLatin1Char('\n'));
}

QString familyText(const ModelProbe& p) {
    if (p.family.empty()) return QObject::tr("(not recognised)");
    QString text = QString::fromStdString(p.family);
    if (!p.sizes.empty()) {
        QStringList sizes;
        for (const std::string& s : p.sizes) sizes << QString::fromStdString(s);
        text += QObject::tr(" — sizes %1").arg(sizes.join(QStringLiteral(", ")));
    }
    if (p.twoExperts) text += QObject::tr(" — two experts (high- and low-noise guide)");
    return text;
}
}  // namespace

OpenModelDialog::OpenModelDialog(const ModelChoice& initial, QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("Open model"));
    auto* top = new QVBoxLayout(this);
    auto* intro = new QLabel(tr("Choose the model's folder as downloaded (Wan2.1 T2V 1.3B or 14B, Wan2.2 T2V-A14B), "
                                "or single files as ComfyUI uses them (fp8 included). A file replaces the "
                                "folder's component of the same kind."));
    intro->setWordWrap(true);
    top->addWidget(intro);
    auto* form = new QFormLayout;
    folder_ = addPathRow(form, tr("Checkpoint folder"), QStringLiteral("folderEdit"), true, QString());
    dit_ = addPathRow(form, tr("DiT file"), QStringLiteral("ditEdit"), false, kModelFilter);
    ditConfig_ = addPathRow(form, tr("DiT config.json (optional)"), QStringLiteral("ditConfigEdit"), false,
                            tr("config.json (*.json);;All files (*)"));
    t5_ = addPathRow(form, tr("T5 text encoder file"), QStringLiteral("t5Edit"), false, kModelFilter);
    vae_ = addPathRow(form, tr("VAE file"), QStringLiteral("vaeEdit"), false, kModelFilter);
    tokenizer_ = addPathRow(form, tr("Tokenizer (optional)"), QStringLiteral("tokenizerEdit"), false,
                            tr("SentencePiece model (*.model);;All files (*)"));
    top->addLayout(form);

    family_ = new QLabel;
    family_->setObjectName(QStringLiteral("modelFamilyLabel"));
    family_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    top->addWidget(family_);
    components_ = new QPlainTextEdit;
    components_->setObjectName(QStringLiteral("componentsView"));
    components_->setReadOnly(true);
    components_->setMinimumHeight(110);
    top->addWidget(components_, 1);
    problems_ = new QLabel;
    problems_->setObjectName(QStringLiteral("problemsLabel"));
    problems_->setWordWrap(true);
    problems_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    top->addWidget(problems_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    load_ = buttons->button(QDialogButtonBox::Ok);
    load_->setObjectName(QStringLiteral("loadModelButton"));
    load_->setText(tr("Load (restarts the engine)"));
    load_->setEnabled(false);
    top->addWidget(buttons);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    resize(760, 460);
    setChoice(initial);
}

QLineEdit* OpenModelDialog::addPathRow(QFormLayout* form, const QString& label, const QString& objectName, bool folder,
                                       const QString& filter) {
    auto* edit = new QLineEdit;
    edit->setObjectName(objectName);
    edit->setClearButtonEnabled(true);
    auto* browse = new QToolButton;
    browse->setText(tr("Browse…"));
    auto* row = new QHBoxLayout;
    row->addWidget(edit, 1);
    row->addWidget(browse);
    form->addRow(label, row);
    connect(edit, &QLineEdit::editingFinished, this, &OpenModelDialog::reprobe);
    connect(browse, &QToolButton::clicked, this, [this, edit, label, folder, filter] {
        const QString start = edit->text().isEmpty() ? folder_->text() : edit->text();
        const QString path = folder ? QFileDialog::getExistingDirectory(this, label, start)
                                    : QFileDialog::getOpenFileName(this, label, QFileInfo(start).path(), filter);
        if (path.isEmpty()) return;
        edit->setText(path);
        reprobe();
    });
    return edit;
}

ModelChoice OpenModelDialog::choice() const {
    auto text = [](const QLineEdit* e) { return e->text().trimmed().toStdString(); };
    ModelChoice c;
    c.ckptDir = text(folder_);
    c.files.dit = text(dit_);
    c.files.dit_config = text(ditConfig_);
    c.files.t5 = text(t5_);
    c.files.vae = text(vae_);
    c.files.tokenizer = text(tokenizer_);
    return c;
}

void OpenModelDialog::setChoice(const ModelChoice& c) {
    folder_->setText(QString::fromStdString(c.ckptDir));
    dit_->setText(QString::fromStdString(c.files.dit));
    ditConfig_->setText(QString::fromStdString(c.files.dit_config));
    t5_->setText(QString::fromStdString(c.files.t5));
    vae_->setText(QString::fromStdString(c.files.vae));
    tokenizer_->setText(QString::fromStdString(c.files.tokenizer));
    reprobe();
}

void OpenModelDialog::reprobe() {
    const quint64 generation = ++generation_;
    probing_ = true;
    load_->setEnabled(false);
    family_->setText(tr("Reading the files…"));
    // Headers only, but a 14B folder on a slow or network disk can still take a moment: off the GUI thread.
    QPointer<OpenModelDialog> self(this);
    QThread* worker = QThread::create([self, generation, c = choice()] {
        ModelProbe result = probeModel(c);
        QMetaObject::invokeMethod(
            qApp, [self, generation, result = std::move(result)] {
                if (self) self->showProbe(generation, result);
            },
            Qt::QueuedConnection);
    });
    connect(worker, &QThread::finished, worker, &QObject::deleteLater);
    worker->start();
}

void OpenModelDialog::showProbe(quint64 generation, const ModelProbe& probe) {
    if (generation != generation_) return;  // the fields changed since: a newer probe is on its way
    probing_ = false;
    probe_ = probe;
    family_->setText(tr("Model: %1").arg(familyText(probe)));
    components_->setPlainText(componentsText(probe));
    QStringList problems;
    for (const std::string& p : probe.problems) problems << QStringLiteral("• ") + QString::fromStdString(p);
    const bool nothingChosen = choice().empty();  // a hint, not an error, before anything is chosen
    problems_->setStyleSheet(nothingChosen ? QString() : QStringLiteral("color: #c0392b;"));
    if (nothingChosen) problems_->setText(tr("Choose a checkpoint folder, or the DiT, T5 and VAE files."));
    else problems_->setText(problems.isEmpty() ? QString() : tr("Cannot load this:\n%1").arg(problems.join('\n')));
    problems_->setVisible(!problems_->text().isEmpty());
    load_->setEnabled(probe.loadable());
    emit probeFinished();
}

}  // namespace wan::app
