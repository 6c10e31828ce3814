// File → Open model… (issues 26, 21, 22): the probe and the dialog say what each file is and refuse files that do
// not make a model, on the tiny checkpoints of tests/data (single-file variants written here into a temporary
// folder: prefixed bf16 DiT, fp8 DiT, safetensors VAE, a DiT of another kind); the recent models; the
// parameters panel switching to Wan2.2 A14B's guide pair and boundary, and the request carrying them; the
// engine restart command that opening a model builds (dry run).
// Origin of the inputs: tests/data/golden/tiny-ckpt and tests/data/wan22/tiny-ckpt (see their READMEs).
// LibTorch first: Qt defines `slots`, a name ATen uses.
#include <ATen/ATen.h>
#include "io/component_files.h"
#include "io/float8.h"
#include "io/io.h"

#include "temporary_settings_test.h"

#include "cli/model_probe.h"
#include "core/model_defaults.h"
#include "settings/settings.h"
#include "ui/load_panel.h"
#include "ui/main_window.h"
#include "ui/open_model_dialog.h"
#include "ui/parameters_panel.h"

#include <QComboBox>
#include <QElapsedTimer>
#include <QProgressBar>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

namespace {

const std::string kRoot = PROJECT_ROOT;
const std::string kTiny = kRoot + "/tests/data/golden/tiny-ckpt";
const std::string kTinyA14B = kRoot + "/tests/data/wan22/tiny-ckpt";

bool contains(const std::vector<std::string>& lines, const std::string& part) {
    for (const std::string& l : lines)
        if (l.find(part) != std::string::npos) return true;
    return false;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const std::string& l : lines) s += l + "\n";
    return s;
}

/// A safetensors file with any dtype name: fp8 cannot be written through ATen before LibTorch 2.1.
struct RawTensor {
    std::string name, dtype;
    std::vector<int64_t> shape;
    QByteArray bytes;
};

RawTensor rawOf(const std::string& name, const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return {name, io::dtype_to_safetensors(c.scalar_type()), c.sizes().vec(),
            QByteArray(static_cast<const char*>(c.data_ptr()), static_cast<qsizetype>(c.nbytes()))};
}

/// The float tensor as F8_E4M3 codes (scale 1, so small tiny-model weights stay representable enough).
RawTensor fp8Of(const std::string& name, const at::Tensor& t) {
    const at::Tensor f = t.to(at::kFloat).contiguous();
    QByteArray codes(static_cast<qsizetype>(f.numel()), '\0');
    const float* v = f.data_ptr<float>();
    for (int64_t i = 0; i < f.numel(); ++i)
        codes[static_cast<qsizetype>(i)] = static_cast<char>(io::float8_from_float(io::Float8Format::E4M3, v[i]));
    return {name, "F8_E4M3", f.sizes().vec(), codes};
}

void writeRawSafetensors(const QString& path, const std::vector<RawTensor>& tensors) {
    QJsonObject header;
    qint64 offset = 0;
    for (const RawTensor& t : tensors) {
        QJsonArray shape;
        for (int64_t d : t.shape) shape.append(static_cast<qint64>(d));
        header[QString::fromStdString(t.name)] = QJsonObject{
            {QStringLiteral("dtype"), QString::fromStdString(t.dtype)},
            {QStringLiteral("shape"), shape},
            {QStringLiteral("data_offsets"), QJsonArray{offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
    }
    QByteArray json = QJsonDocument(header).toJson(QJsonDocument::Compact);
    while (json.size() % 8) json.append(' ');
    QFile f(path);
    QVERIFY2(f.open(QIODevice::WriteOnly), qPrintable(path));
    const quint64 n = static_cast<quint64>(json.size());
    f.write(reinterpret_cast<const char*>(&n), 8);  // little-endian on every machine we build for
    f.write(json);
    for (const RawTensor& t : tensors) f.write(t.bytes);
}

/// Single files made from the tiny upstream folder, as users have them (ComfyUI style).
struct SingleFiles {
    explicit SingleFiles(const QString& dir) : dir_(dir.toStdString()) {
        const io::TensorStore dit = io::TensorStore::open(kTiny + "/diffusion_pytorch_model.safetensors");
        io::NamedTensors prefixed, i2v;
        std::vector<RawTensor> fp8;
        for (const std::string& n : dit.names()) {
            const at::Tensor t = dit.load(n);
            prefixed.emplace_back("model.diffusion_model." + n, t.to(at::kBFloat16));
            fp8.push_back(t.dim() == 2 ? fp8Of("model.diffusion_model." + n, t) : rawOf("model.diffusion_model." + n, t));
            i2v.emplace_back(n, t);
        }
        io::save_safetensors(ditBf16(), prefixed);
        writeRawSafetensors(QString::fromStdString(ditFp8()), fp8);
        i2v.emplace_back("img_emb.proj.1.weight", at::zeros({128, 64}));  // what an image-to-video DiT has
        io::save_safetensors(ditI2V(), i2v);
        const io::TensorStore vae = io::TensorStore::open(kTiny + "/Wan2.1_VAE.pth");
        io::NamedTensors vaeTensors;
        for (const std::string& n : vae.names()) vaeTensors.emplace_back(n, vae.load(n));
        io::save_safetensors(vaeFile(), vaeTensors);
    }
    std::string ditBf16() const { return dir_ + "/wan2.1_t2v_tiny_bf16.safetensors"; }
    std::string ditFp8() const { return dir_ + "/wan2.1_t2v_tiny_fp8_e4m3fn.safetensors"; }
    std::string ditI2V() const { return dir_ + "/wan2.1_i2v_tiny.safetensors"; }
    std::string vaeFile() const { return dir_ + "/wan_2.1_vae.safetensors"; }
    static std::string t5() { return kTiny + "/models_t5_umt5-xxl-enc-bf16.pth"; }
    static std::string tokenizer() { return kTiny + "/google/umt5-xxl/spiece.model"; }
    static std::string config() { return kTiny + "/config.json"; }

    /// A choice of files only, no folder.
    ModelChoice choice(const std::string& ditPath) const {
        ModelChoice c;
        c.files.dit = ditPath;
        c.files.dit_config = config();
        c.files.t5 = t5();
        c.files.vae = vaeFile();
        c.files.tokenizer = tokenizer();
        return c;
    }

private:
    std::string dir_;
};

EngineInfo infoOf(const std::string& variant) {
    EngineInfo info;
    info.model_variant = variant;
    apply_model_defaults(model_defaults(variant), info);
    return info;
}

QStringList comboItems(const QComboBox* box) {
    QStringList items;
    for (int i = 0; i < box->count(); ++i) items << box->itemText(i);
    return items;
}

}  // namespace

class TestAppOpenModel : public TemporarySettingsTest {
    Q_OBJECT
private slots:
    void probesTheUpstreamFolder();
    void probesTheTwoExpertFolder();
    void probesSingleFiles();
    void refusesFilesOfAnotherKind();
    void refusesMissingAndMismatchedFiles();
    void stripsOnlyTheModelOptions();
    void dialogShowsAndRefuses();
    void recentModelsKeepTheNewestEight();
    void recentMenuShowsMissingModelsDisabled();
    void panelSwitchesToTheGuidePair();
    void openingAModelRestartsTheEngine();
    void loadProgressBarMovesNamesTheFileAndGoes();
    void cancelDuringLoadKeepsTheWindowAndTheQueue();

private:
    void setUpTestCase() override {
        QVERIFY(files_.isValid());
        files = std::make_unique<SingleFiles>(files_.path());
    }

    QTemporaryDir files_;
    std::unique_ptr<SingleFiles> files;
};

void TestAppOpenModel::probesTheUpstreamFolder() {
    ModelChoice c;
    c.ckptDir = kTiny;
    const ModelProbe p = probeModel(c);
    QVERIFY2(p.loadable(), joined(p.problems).c_str());
    QVERIFY2(p.family.find("custom") == 0, p.family.c_str());  // the tiny test model is no released size
    QCOMPARE(p.numHeads, 4);
    QVERIFY(!p.twoExperts);
    QStringList roles;
    for (const ProbedComponent& r : p.components) roles << QString::fromStdString(r.role);
    QCOMPARE(roles, QStringList({"DiT", "T5 encoder", "VAE", "Tokenizer"}));
    QVERIFY2(p.components[0].description.find("Wan2.1 T2V DiT") != std::string::npos, p.components[0].description.c_str());
    QVERIFY(p.components[3].path.find("spiece.model") != std::string::npos);
}

void TestAppOpenModel::probesTheTwoExpertFolder() {
    ModelChoice c;
    c.ckptDir = kTinyA14B;
    const ModelProbe p = probeModel(c);
    QVERIFY2(p.loadable(), joined(p.problems).c_str());
    QVERIFY(p.twoExperts);
    QVERIFY2(p.family.find("two-expert") != std::string::npos, p.family.c_str());
    QCOMPARE(p.components[0].role, std::string("DiT (high noise)"));
    QCOMPARE(p.components[1].role, std::string("DiT (low noise)"));
    QVERIFY(p.components[0].path.find("high_noise_model") != std::string::npos);

    // One expert missing: named before anything is loaded.
    QTemporaryDir broken;
    QVERIFY(QDir().mkpath(broken.filePath("high_noise_model")));
    c.ckptDir = broken.path().toStdString();
    const ModelProbe q = probeModel(c);
    QVERIFY(!q.loadable());
    QVERIFY2(contains(q.problems, "low_noise_model"), joined(q.problems).c_str());
}

void TestAppOpenModel::probesSingleFiles() {
    const ModelProbe bf16 = probeModel(files->choice(files->ditBf16()));
    QVERIFY2(bf16.loadable(), joined(bf16.problems).c_str());
    QCOMPARE(bf16.components[0].role, std::string("DiT"));
    const std::string& d = bf16.components[0].description;
    QVERIFY2(d.find("BF16") != std::string::npos && d.find("model.diffusion_model.") != std::string::npos, d.c_str());
    QVERIFY2(bf16.components[2].description.find("Wan2.1 VAE") != std::string::npos, bf16.components[2].description.c_str());

    const ModelProbe fp8 = probeModel(files->choice(files->ditFp8()));
    QVERIFY2(fp8.loadable(), joined(fp8.problems).c_str());
    QVERIFY2(fp8.components[0].description.find("F8_E4M3") != std::string::npos, fp8.components[0].description.c_str());

    // A folder with the DiT replaced by a file: the file's row, the folder's T5 and VAE.
    ModelChoice mixed;
    mixed.ckptDir = kTiny;
    mixed.files.dit = files->ditBf16();
    const ModelProbe m = probeModel(mixed);
    QVERIFY2(m.loadable(), joined(m.problems).c_str());
    QCOMPARE(m.components[0].path, files->ditBf16());
    QVERIFY(m.components[1].path.find("models_t5_umt5-xxl-enc-bf16.pth") != std::string::npos);
}

void TestAppOpenModel::refusesFilesOfAnotherKind() {
    ModelChoice c = files->choice(files->vaeFile());  // the VAE where the DiT belongs
    ModelProbe p = probeModel(c);
    QVERIFY(!p.loadable());
    QVERIFY2(contains(p.problems, "the DiT file wan_2.1_vae.safetensors is Wan2.1 VAE"), joined(p.problems).c_str());
    QVERIFY2(contains(p.problems, "not a Wan2.1/Wan2.2 text-to-video DiT"), joined(p.problems).c_str());

    p = probeModel(files->choice(files->ditI2V()));
    QVERIFY(!p.loadable());
    QVERIFY2(contains(p.problems, "image-to-video"), joined(p.problems).c_str());

    c = files->choice(files->ditBf16());
    c.files.t5 = files->vaeFile();  // the VAE where the text encoder belongs
    c.files.vae = SingleFiles::t5();  // and the reverse
    p = probeModel(c);
    QVERIFY2(contains(p.problems, "the T5 encoder file wan_2.1_vae.safetensors is Wan2.1 VAE"), joined(p.problems).c_str());
    QVERIFY2(contains(p.problems, "the VAE file models_t5_umt5-xxl-enc-bf16.pth is UMT5 text encoder"),
             joined(p.problems).c_str());
}

void TestAppOpenModel::refusesMissingAndMismatchedFiles() {
    ModelChoice c = files->choice(files->ditBf16());
    c.files.vae = "/nowhere/wan_2.1_vae.safetensors";
    ModelProbe p = probeModel(c);
    QVERIFY2(contains(p.problems, "the VAE file /nowhere/wan_2.1_vae.safetensors does not exist"), joined(p.problems).c_str());

    // Only a DiT: the engine's own message lists what is missing and the option that would give it.
    c = ModelChoice();
    c.files.dit = files->ditBf16();
    c.files.dit_config = SingleFiles::config();
    p = probeModel(c);
    QVERIFY(!p.loadable());
    QVERIFY2(contains(p.problems, "--t5") && contains(p.problems, "--vae"), joined(p.problems).c_str());

    // A DiT whose text width is not the text encoder's: two different models.
    QJsonObject config = QJsonDocument::fromJson([] {
        QFile f(QString::fromStdString(SingleFiles::config()));
        f.open(QIODevice::ReadOnly);
        return f.readAll();
    }()).object();
    config[QStringLiteral("text_dim")] = 32;
    const QString other = files_.filePath(QStringLiteral("other_config.json"));
    QFile out(other);
    QVERIFY(out.open(QIODevice::WriteOnly));
    out.write(QJsonDocument(config).toJson());
    out.close();
    c = files->choice(files->ditBf16());
    c.files.dit_config = other.toStdString();
    p = probeModel(c);
    QVERIFY(!p.loadable());
    QVERIFY2(contains(p.problems, "gives text features of width 64, but the DiT wan2.1_t2v_tiny_bf16.safetensors takes "
                                  "width 32"),
             joined(p.problems).c_str());

    QVERIFY(contains(probeModel(ModelChoice()).problems, "choose a checkpoint folder"));
}

void TestAppOpenModel::stripsOnlyTheModelOptions() {
    const std::vector<std::string> args = {"--ckpt-dir", "/m/old", "--dit=/m/a.safetensors", "--t5-fsdp", "--vae-tile",
                                           "32", "--ckpt_dir", "/m/x", "--t5", "/m/t5.pth", "--dit-fsdp",
                                           "--tokenizer", "/m/s.model", "--sample-steps", "30"};
    const std::vector<std::string> kept = stripModelArgs(args);
    QCOMPARE(kept, (std::vector<std::string>{"--t5-fsdp", "--vae-tile", "32", "--dit-fsdp", "--sample-steps", "30"}));
    ModelChoice c;
    c.ckptDir = "/m/new";
    c.files.vae = "/m/v.safetensors";
    QCOMPARE(c.arguments(), (std::vector<std::string>{"--ckpt-dir", "/m/new", "--vae", "/m/v.safetensors"}));
    QCOMPARE(c.label(), std::string("new"));
    // Wan2.2's expert files are model options too: a relaunch drops them and carries the new choice's.
    QCOMPARE(stripModelArgs({"--dit-high", "/m/h.safetensors", "--dit_low=/m/l.safetensors", "--offload-dit"}),
             (std::vector<std::string>{"--offload-dit"}));
    ModelChoice e;
    e.files.dit_high = "/m/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors";
    e.files.dit_low = "/m/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors";
    QCOMPARE(e.arguments(), (std::vector<std::string>{"--dit-high", e.files.dit_high, "--dit-low", e.files.dit_low}));
    QVERIFY(!(e == ModelChoice()));
}

void TestAppOpenModel::dialogShowsAndRefuses() {
    OpenModelDialog dialog;
    QTRY_VERIFY(!dialog.isProbing());  // nothing chosen yet: a hint, and nothing to load
    QVERIFY(!dialog.loadButton()->isEnabled());
    QVERIFY(dialog.problemsLabel()->text().startsWith(QLatin1String("Choose a checkpoint folder")));
    dialog.setChoice(files->choice(files->ditFp8()));
    QTRY_VERIFY(!dialog.isProbing());
    QVERIFY2(dialog.loadButton()->isEnabled(), qPrintable(dialog.problemsLabel()->text()));
    QVERIFY(dialog.familyLabel()->text().contains(QLatin1String("custom")));
    QVERIFY(dialog.componentsView()->toPlainText().contains(QLatin1String("F8_E4M3")));
    QVERIFY(dialog.problemsLabel()->text().isEmpty());
    QCOMPARE(dialog.choice(), files->choice(files->ditFp8()));

    // Typing the VAE into the DiT field: refused, with the reason.
    dialog.ditEdit()->setText(QString::fromStdString(files->vaeFile()));
    dialog.reprobe();
    QTRY_VERIFY(!dialog.isProbing());
    QVERIFY(!dialog.loadButton()->isEnabled());
    QVERIFY2(dialog.problemsLabel()->text().contains(QLatin1String("is Wan2.1 VAE")),
             qPrintable(dialog.problemsLabel()->text()));

    // A folder alone.
    ModelChoice folder;
    folder.ckptDir = kTinyA14B;
    dialog.setChoice(folder);
    QTRY_VERIFY(!dialog.isProbing());
    QVERIFY(dialog.loadButton()->isEnabled());
    QVERIFY(dialog.familyLabel()->text().contains(QLatin1String("two experts")));
    QVERIFY(dialog.componentsView()->toPlainText().contains(QLatin1String("DiT (high noise)")));
}

void TestAppOpenModel::recentModelsKeepTheNewestEight() {
    Settings settings(QDir(settingsDir_.path()).filePath(QStringLiteral("recent.ini")));
    for (int i = 0; i < 10; ++i) {
        ModelChoice c;
        c.ckptDir = "/models/m" + std::to_string(i);
        settings.addRecentModel(c);
    }
    std::vector<ModelChoice> recent = settings.recentModels();
    QCOMPARE(static_cast<int>(recent.size()), Settings::kMaxRecentModels);
    QCOMPARE(recent.front().ckptDir, std::string("/models/m9"));
    QCOMPARE(recent.back().ckptDir, std::string("/models/m2"));
    // Opening one again moves it up, once.
    ModelChoice again;
    again.ckptDir = "/models/m5";
    settings.addRecentModel(again);
    recent = settings.recentModels();
    QCOMPARE(static_cast<int>(recent.size()), Settings::kMaxRecentModels);
    QCOMPARE(recent.front(), again);
    QCOMPARE(std::count(recent.begin(), recent.end(), again), 1);
    // Files survive the round trip.
    ModelChoice filesOnly = files->choice(files->ditFp8());
    settings.addRecentModel(filesOnly);
    settings.sync();
    QCOMPARE(Settings(settings.fileName()).recentModels().front(), filesOnly);
}

void TestAppOpenModel::recentMenuShowsMissingModelsDisabled() {
    Settings settings;
    ModelChoice gone;
    gone.ckptDir = "/models/deleted-since";
    ModelChoice here;
    here.ckptDir = kTiny;
    settings.setRecentModels({here, gone});
    AppOptions options;
    auto session = makeSession(fastFake());
    MainWindow window(session.get(), &settings, options);
    window.setConfirmOnClose(false);
    QMenu* menu = window.recentModelsMenu();
    QVERIFY(menu);
    emit menu->aboutToShow();
    const QList<QAction*> actions = menu->actions();
    QVERIFY(actions.size() >= 2);
    QCOMPARE(actions[0]->text(), QStringLiteral("tiny-ckpt"));
    QVERIFY(actions[0]->isEnabled());
    QVERIFY2(actions[1]->text().contains(QLatin1String("not found: /models/deleted-since")), qPrintable(actions[1]->text()));
    QVERIFY(!actions[1]->isEnabled());
    QVERIFY(window.findChild<QAction*>(QStringLiteral("openModelAction"))->isEnabled());

    // A window driving a remote engine (--connect): the model is the server's to choose.
    AppOptions remote;
    remote.connectAddress = "gpu-server:7860";
    MainWindow client(session.get(), &settings, remote);
    client.setConfirmOnClose(false);
    QVERIFY(!client.findChild<QAction*>(QStringLiteral("openModelAction"))->isEnabled());
    emit client.recentModelsMenu()->aboutToShow();
    QVERIFY(!client.recentModelsMenu()->actions().at(0)->isEnabled());
    session->shutdown();
    QVERIFY(session->waitForStopped(5000));
}

void TestAppOpenModel::panelSwitchesToTheGuidePair() {
    ParametersPanel panel;
    panel.show();
    panel.setEngineInfo(infoOf("1.3B"));
    QCOMPARE(comboItems(panel.sizeCombo()), QStringList({"832*480", "480*832"}));
    QVERIFY(!panel.guideHighSpin()->isVisibleTo(&panel));
    QVERIFY(!panel.boundarySpin()->isVisibleTo(&panel));
    GenerationRequest r = panel.request();
    QCOMPARE(r.guide_scale_high, -1.0);  // one expert: the request leaves the pair to the engine
    QCOMPARE(r.boundary, -1.0);

    panel.setEngineInfo(infoOf("A14B"));
    QVERIFY(panel.showsTwoExperts());
    QCOMPARE(comboItems(panel.sizeCombo()), QStringList({"1280*720", "720*1280", "832*480", "480*832"}));
    QVERIFY(panel.guideHighSpin()->isVisibleTo(&panel));
    QVERIFY(panel.boundarySpin()->isVisibleTo(&panel));
    auto* form = panel.findChild<QFormLayout*>();
    QVERIFY(form);
    QCOMPARE(qobject_cast<QLabel*>(form->labelForField(panel.guideSpin()))->text(), QStringLiteral("Guide scale (low noise)"));
    r = panel.request();  // A14B's defaults: guide 3 (low), 4 (high), switch at 0.875
    QCOMPARE(r.guide_scale, 3.0);
    QCOMPARE(r.guide_scale_high, 4.0);
    QCOMPARE(r.boundary, 0.875);

    panel.guideSpin()->setValue(2.5);
    panel.guideHighSpin()->setValue(5.0);
    panel.boundarySpin()->setValue(0.9);
    r = panel.request();
    QCOMPARE(r.guide_scale, 2.5);  // what --sample-guide-scale 2.5,5 --boundary 0.9 gives
    QCOMPARE(r.guide_scale_high, 5.0);
    QCOMPARE(r.boundary, 0.9);
    QVERIFY(r.validate().empty());

    // A saved request with a pair comes back into the fields.
    GenerationRequest saved = r;
    saved.guide_scale = 1.5;
    saved.guide_scale_high = 6.0;
    saved.boundary = 0.8;
    panel.setRequest(saved);
    QCOMPARE(panel.guideHighSpin()->value(), 6.0);
    QCOMPARE(panel.boundarySpin()->value(), 0.8);

    panel.setEngineInfo(infoOf("14B"));
    QVERIFY(!panel.guideHighSpin()->isVisibleTo(&panel));
    QCOMPARE(panel.request().guide_scale_high, -1.0);
    QCOMPARE(qobject_cast<QLabel*>(form->labelForField(panel.guideSpin()))->text(), QStringLiteral("Guide scale"));
}

void TestAppOpenModel::openingAModelRestartsTheEngine() {
    Settings settings;
    settings.setRecentModels({});
    AppOptions options;
    options.engine.ckpt_dir = "/m/old";
    auto session = makeSession(fastFake());  // the fake engine: world 2, Ulysses 2, DiT FSDP
    MainWindow window(session.get(), &settings, options);
    window.setConfirmOnClose(false);
    window.setInteractive(false);
    window.setLaunchDryRun(true);
    window.setLaunchProgram(QStringLiteral("/opt/wanstudio/bin/wanstudio"),
                            {QStringLiteral("--ckpt-dir"), QStringLiteral("/m/old"), QStringLiteral("--vae-tile"),
                             QStringLiteral("32"), QStringLiteral("--ulysses-size"), QStringLiteral("2")});
    QCOMPARE(window.currentModel().ckptDir, std::string("/m/old"));
    session->start();
    QTRY_VERIFY(session->isReady());

    const ModelChoice chosen = files->choice(files->ditFp8());
    QVERIFY(window.openModel(chosen, 4));
    const QString command = window.lastLaunchCommand();
    QVERIFY2(command.startsWith(QLatin1String("mpirun --bind-to none")), qPrintable(command));
    QVERIFY2(command.contains(QLatin1String("-np 2 /opt/wanstudio/bin/wanstudio --vae-tile 32 --dit ")), qPrintable(command));
    QVERIFY2(command.contains(QString::fromStdString("--t5 " + SingleFiles::t5())), qPrintable(command));
    // The running layout, as it is: the fake engine shards its DiT only.
    QVERIFY2(command.endsWith(QLatin1String("--ulysses-size 2 --ring-size 1 --dit-fsdp")), qPrintable(command));
    QVERIFY2(!command.contains(QLatin1String("/m/old")), qPrintable(command));
    QCOMPARE(settings.recentModels().front(), chosen);

    // A model whose heads forbid the running Ulysses degree gets the layout proposed for as many processes.
    const LaunchCommand odd = window.modelLaunchCommand(chosen, 3);
    QVERIFY2(odd.displayText().contains(QLatin1String("--ulysses-size 1 --ring-size 2")), qPrintable(odd.displayText()));
    session->shutdown();
    QVERIFY(session->waitForStopped(5000));
}

/// A window over the fake engine whose load reads `loadSteps` simulated tensors (1 MB, 20 ms each); shown, the
/// engine not started. Members in construction order: the window is torn down before the session it watches.
struct LoadingWindow {
    explicit LoadingWindow(int loadSteps) : session(makeSession(withLoadSteps(loadSteps))), window(session.get(), &settings, options) {
        window.setConfirmOnClose(false);
        window.show();
    }
    static FakeBackendConfig withLoadSteps(int n) {
        FakeBackendConfig config = fastFake();
        config.loadSteps = n;
        return config;
    }
    Settings settings;
    AppOptions options;
    std::unique_ptr<EngineSession> session;
    MainWindow window;
};

void TestAppOpenModel::loadProgressBarMovesNamesTheFileAndGoes() {
    LoadingWindow w(30);  // 30 simulated tensors of 1 MB, 20 ms each
    MainWindow& window = w.window;
    EngineSession* session = w.session.get();
    QProgressBar* bar = window.loadPanel()->progressBar();
    QVERIFY(window.loadPanel()->isVisible());  // shown from the start: busy until the first report
    session->start();
    QTRY_VERIFY(bar->maximum() > 0 && bar->value() > 0);
    const int first = bar->value();
    QTRY_VERIFY(bar->value() > first);  // it moves
    QVERIFY(window.loadPanel()->cancelButton()->isVisible());
    QVERIFY(window.engineStateLabel()->text().startsWith(QStringLiteral("Loading the ")));
    QVERIFY(window.engineStateLabel()->toolTip().startsWith(QStringLiteral("/fake/")));  // the file being read
    QVERIFY(!window.generateButton()->isEnabled());
    QTRY_VERIFY(session->isReady());
    QVERIFY(!window.loadPanel()->isVisible());
    QCOMPARE(window.engineStateLabel()->text(), QStringLiteral("Ready"));
    session->shutdown();
    QVERIFY(session->waitForStopped(5000));
}

void TestAppOpenModel::cancelDuringLoadKeepsTheWindowAndTheQueue() {
    LoadingWindow w(1000);  // 20 s unless cancelled
    MainWindow& window = w.window;
    EngineSession* session = w.session.get();
    QSignalSpy finished(session, &EngineSession::finished);
    QSignalSpy failed(session, &EngineSession::failed);
    session->start();
    const qint64 queued = session->submit(wan::GenerationRequest{});  // e.g. a job restored before the load ended
    QVERIFY(queued > 0);
    QTRY_VERIFY(window.loadPanel()->progressBar()->value() > 0);
    QElapsedTimer clock;
    clock.start();
    QTest::mouseClick(window.loadPanel()->cancelButton(), Qt::LeftButton);  // the GUI thread does not wait
    QVERIFY(clock.elapsed() < 200);
    QTRY_COMPARE(session->state(), EngineSession::State::StartCancelled);
    QVERIFY(clock.elapsed() < 5000);  // stopped at the next simulated tensor, not after the whole load
    QVERIFY(window.loadPanel()->isVisible());
    QVERIFY(!window.loadPanel()->progressBar()->isVisible());
    QVERIFY(window.loadPanel()->openModelButton()->isVisible());
    QVERIFY(window.engineStateLabel()->text().contains(QStringLiteral("cancelled")));
    QVERIFY(!window.generateButton()->isEnabled());
    // The queued job neither ran nor failed: it waits for the next engine (Open model… keeps it).
    QTest::qWait(100);
    QCOMPARE(finished.count(), 0);
    QCOMPARE(failed.count(), 0);
    QCOMPARE(session->pendingJobs(), 1);
    // The window still answers: the history tab can be chosen, the parameters edited.
    window.tabs()->setCurrentIndex(1);
    QCOMPARE(window.tabs()->currentIndex(), 1);
    session->shutdown();  // gives the waiting job back as cancelled
    QVERIFY(session->waitForStopped(5000));
    QTRY_COMPARE(finished.count(), 1);  // delivered to this thread
}

QTEST_MAIN(TestAppOpenModel)
#include "test_app_open_model.moc"
