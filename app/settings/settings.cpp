#include "settings/settings.h"

#include "core/lora_spec.h"
#include "core/presets.h"

#include <QRegularExpression>
#include <QStringList>
#include <QUuid>

#include <algorithm>

namespace wan::app {

namespace {
// Every key, in one place.
const QString kOutputFolder = QStringLiteral("output/folder");
const QString kParamsSaved = QStringLiteral("params/saved");
const QString kPrompt = QStringLiteral("params/prompt");
const QString kNegativePrompt = QStringLiteral("params/negativePrompt");
const QString kWidth = QStringLiteral("params/width");
const QString kHeight = QStringLiteral("params/height");
const QString kFrames = QStringLiteral("params/frames");
const QString kSteps = QStringLiteral("params/steps");
const QString kGuide = QStringLiteral("params/guideScale");
const QString kGuideHigh = QStringLiteral("params/guideScaleHigh");  // two-expert models
const QString kBoundary = QStringLiteral("params/boundary");
const QString kRecentModels = QStringLiteral("models/recent");  // an array of {folder, dit, ditConfig, t5, vae, tokenizer}
const QString kShift = QStringLiteral("params/shift");
const QString kSeed = QStringLiteral("params/seed");
const QString kSolver = QStringLiteral("params/solver");
const QString kDenoisingSteps = QStringLiteral("params/denoisingSteps");
const QString kPreset = QStringLiteral("params/preset");
const QString kLoras = QStringLiteral("params/loras");  // "PATH:STRENGTH" each (core/lora_spec.h)
const QString kLorasHigh = QStringLiteral("params/lorasHigh");  // two-expert models: the high-noise expert's
const QString kLorasLow = QStringLiteral("params/lorasLow");    // and the low-noise expert's
const QString kExtendLang = QStringLiteral("params/extendTargetLang");
const QString kDitDtype = QStringLiteral("engine/ditDtype");      // Engine → Memory…
const QString kMaxVramGb = QStringLiteral("engine/maxVramGb");
const QString kOffloadDit = QStringLiteral("engine/offloadDit");
const QString kGeometry = QStringLiteral("window/geometry");
const QString kState = QStringLiteral("window/state");
const QString kSplitterPrefix = QStringLiteral("window/splitter/");
const QString kRemoteClientId = QStringLiteral("remote/clientId");
/// The LoRAs under `key`; a spec that no longer parses (edited by hand) is dropped, not fatal.
std::vector<LoraSpec> readLoras(const QSettings& settings, const QString& key) {
    std::vector<LoraSpec> out;
    for (const QString& spec : settings.value(key).toStringList()) {
        try {
            out.push_back(parse_lora_spec(spec.toStdString(), "settings"));
        } catch (const Error&) {
        }
    }
    return out;
}

/// The step list, preset and LoRAs; a value that no longer parses (edited by hand) is dropped, not fatal.
void readSamplingExtras(const QSettings& settings, GenerationRequest& r) {
    const std::string steps = settings.value(kDenoisingSteps).toString().toStdString();
    try {
        if (!steps.empty() && r.solver == "euler") r.denoising_steps = parse_step_list(steps, "settings");
    } catch (const Error&) {
        r.denoising_steps.clear();
    }
    r.preset = settings.value(kPreset).toString().toStdString();
    r.loras = readLoras(settings, kLoras);
    r.loras_high = readLoras(settings, kLorasHigh);
    r.loras_low = readLoras(settings, kLorasLow);
}

QStringList loraStrings(const std::vector<LoraSpec>& loras) {
    QStringList out;
    for (const LoraSpec& l : loras) out << QString::fromStdString(format_lora_spec(l));
    return out;
}
}  // namespace

Settings::Settings() : settings_(std::make_unique<QSettings>()) {}

Settings::Settings(const QString& iniPath) : settings_(std::make_unique<QSettings>(iniPath, QSettings::IniFormat)) {}

Settings::~Settings() = default;

QString Settings::outputFolder() const { return settings_->value(kOutputFolder).toString(); }
void Settings::setOutputFolder(const QString& folder) { settings_->setValue(kOutputFolder, folder); }

bool Settings::livePreview() const { return settings_->value(QStringLiteral("view/livePreview"), true).toBool(); }
void Settings::setLivePreview(bool on) { settings_->setValue(QStringLiteral("view/livePreview"), on); }

QByteArray Settings::remoteClientId() {
    static const QRegularExpression valid(QStringLiteral("^[A-Za-z0-9-]{1,40}$"));
    QString id = settings_->value(kRemoteClientId).toString();
    if (!valid.match(id).hasMatch()) {
        id = QUuid::createUuid().toString(QUuid::WithoutBraces);
        settings_->setValue(kRemoteClientId, id);
        settings_->sync();  // a second window started now reads the same id
    }
    return id.toLatin1();
}

MemoryOptions Settings::memoryOptions() const {
    MemoryOptions m;
    m.ditDtype = settings_->value(kDitDtype, QStringLiteral("auto")).toString().toStdString();
    m.maxVramGb = settings_->value(kMaxVramGb, 0.0).toDouble();
    m.offloadDit = settings_->value(kOffloadDit, false).toBool();
    return m.problems().empty() ? m : MemoryOptions();  // edited by hand into something invalid: the defaults
}

void Settings::setMemoryOptions(const MemoryOptions& m) {
    settings_->setValue(kDitDtype, QString::fromStdString(m.ditDtype));
    settings_->setValue(kMaxVramGb, m.maxVramGb);
    settings_->setValue(kOffloadDit, m.offloadDit);
}

bool Settings::hasLastRequest() const { return settings_->value(kParamsSaved, false).toBool(); }

GenerationRequest Settings::lastRequest() const {
    GenerationRequest r;
    r.prompt = settings_->value(kPrompt).toString().toStdString();
    r.negative_prompt = settings_->value(kNegativePrompt).toString().toStdString();
    r.width = settings_->value(kWidth, 0).toInt();
    r.height = settings_->value(kHeight, 0).toInt();
    r.frame_num = settings_->value(kFrames, 0).toInt();
    r.sample_steps = settings_->value(kSteps, 0).toInt();
    r.guide_scale = settings_->value(kGuide, -1.0).toDouble();
    r.sample_shift = settings_->value(kShift, -1.0).toDouble();
    r.guide_scale_high = settings_->value(kGuideHigh, -1.0).toDouble();
    r.boundary = settings_->value(kBoundary, -1.0).toDouble();
    r.seed = settings_->value(kSeed, -1).toLongLong();
    const QString solver = settings_->value(kSolver, QStringLiteral("unipc")).toString();
    r.solver = solver == QStringLiteral("dpm++") ? "dpm++" : solver == QStringLiteral("euler") ? "euler" : "unipc";
    readSamplingExtras(*settings_, r);
    const QString lang = settings_->value(kExtendLang, QStringLiteral("zh")).toString();
    r.extend_target_lang = lang == QStringLiteral("en") ? "en" : "zh";
    return r;
}

void Settings::setLastRequest(const GenerationRequest& r) {
    settings_->setValue(kParamsSaved, true);
    settings_->setValue(kPrompt, QString::fromStdString(r.prompt));
    settings_->setValue(kNegativePrompt, QString::fromStdString(r.negative_prompt));
    settings_->setValue(kWidth, r.width);
    settings_->setValue(kHeight, r.height);
    settings_->setValue(kFrames, r.frame_num);
    settings_->setValue(kSteps, r.sample_steps);
    settings_->setValue(kGuide, r.guide_scale);
    settings_->setValue(kShift, r.sample_shift);
    settings_->setValue(kGuideHigh, r.guide_scale_high);
    settings_->setValue(kBoundary, r.boundary);
    settings_->setValue(kSeed, static_cast<qlonglong>(r.seed));
    settings_->setValue(kSolver, QString::fromStdString(r.solver));
    QStringList steps;
    for (int k : r.denoising_steps) steps << QString::number(k);
    settings_->setValue(kDenoisingSteps, steps.join(QLatin1Char(',')));
    settings_->setValue(kPreset, QString::fromStdString(r.preset));
    settings_->setValue(kLoras, loraStrings(r.loras));
    settings_->setValue(kLorasHigh, loraStrings(r.loras_high));
    settings_->setValue(kLorasLow, loraStrings(r.loras_low));
    settings_->setValue(kExtendLang, QString::fromStdString(r.extend_target_lang));
}

std::vector<ModelChoice> Settings::recentModels() const {
    std::vector<ModelChoice> models;
    const int n = settings_->beginReadArray(kRecentModels);
    for (int i = 0; i < n && static_cast<int>(models.size()) < kMaxRecentModels; ++i) {
        settings_->setArrayIndex(i);
        ModelChoice c;
        c.ckptDir = settings_->value(QStringLiteral("folder")).toString().toStdString();
        c.files.dit = settings_->value(QStringLiteral("dit")).toString().toStdString();
        c.files.dit_config = settings_->value(QStringLiteral("ditConfig")).toString().toStdString();
        c.files.t5 = settings_->value(QStringLiteral("t5")).toString().toStdString();
        c.files.vae = settings_->value(QStringLiteral("vae")).toString().toStdString();
        c.files.tokenizer = settings_->value(QStringLiteral("tokenizer")).toString().toStdString();
        if (!c.empty()) models.push_back(c);
    }
    settings_->endArray();
    return models;
}

void Settings::setRecentModels(const std::vector<ModelChoice>& models) {
    settings_->remove(kRecentModels);
    settings_->beginWriteArray(kRecentModels);
    const int n = std::min(static_cast<int>(models.size()), kMaxRecentModels);
    for (int i = 0; i < n; ++i) {
        const ModelChoice& c = models[static_cast<size_t>(i)];
        settings_->setArrayIndex(i);
        settings_->setValue(QStringLiteral("folder"), QString::fromStdString(c.ckptDir));
        settings_->setValue(QStringLiteral("dit"), QString::fromStdString(c.files.dit));
        settings_->setValue(QStringLiteral("ditConfig"), QString::fromStdString(c.files.dit_config));
        settings_->setValue(QStringLiteral("t5"), QString::fromStdString(c.files.t5));
        settings_->setValue(QStringLiteral("vae"), QString::fromStdString(c.files.vae));
        settings_->setValue(QStringLiteral("tokenizer"), QString::fromStdString(c.files.tokenizer));
    }
    settings_->endArray();
}

void Settings::addRecentModel(const ModelChoice& choice) {
    if (choice.empty()) return;
    std::vector<ModelChoice> models = recentModels();
    models.erase(std::remove(models.begin(), models.end(), choice), models.end());
    models.insert(models.begin(), choice);
    setRecentModels(models);
}

QByteArray Settings::windowGeometry() const { return settings_->value(kGeometry).toByteArray(); }
void Settings::setWindowGeometry(const QByteArray& geometry) { settings_->setValue(kGeometry, geometry); }
QByteArray Settings::windowState() const { return settings_->value(kState).toByteArray(); }
void Settings::setWindowState(const QByteArray& state) { settings_->setValue(kState, state); }
QByteArray Settings::splitterState(const QString& name) const {
    return settings_->value(kSplitterPrefix + name).toByteArray();
}
void Settings::setSplitterState(const QString& name, const QByteArray& state) {
    settings_->setValue(kSplitterPrefix + name, state);
}

void Settings::sync() { settings_->sync(); }
QString Settings::fileName() const { return settings_->fileName(); }

}  // namespace wan::app
