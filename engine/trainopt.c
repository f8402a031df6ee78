/*
 * trainopt.c — the training options' table; see trainopt.h.
 *
 * Constraints kept: values are parsed strictly (a decimal number and
 * nothing else: no hex, inf, nan or blanks), so the command line and a
 * study file accept exactly the same texts and answer a bad one with the
 * same "expected ..." text.
 */
#include "trainopt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gates.h"
#include "parse.h"

static const char *check_backend(const char *v, char *buf, size_t n)
{
	if (tt_backend_get(v))
		return NULL;
	snprintf(buf, n, "one of the backends built in: %s", tt_backend_list());
	return buf;
}

#define OFF(f) offsetof(tt_train_config, f)
#define CLI TT_TO_CLI
#define TRAIN TT_TO_TRAIN
#define DATA_WHY "the data belong to the study"

/* `tunetop train`'s options in --help order; the three knobs of --gates
 * follow it as [train] keys of their own, so that each can be searched. */
const tt_trainopt tt_trainopts[] = {
	{ "model", "SPEC", TT_TO_STRING, 0, 0, NULL, OFF(model),
	  "resnet:2,2,2:w16", NULL,
	  "model spec: mlp:W,W,..  cnn:C,C,..  resnet:B,B,..[:wW]",
	  "Model spec:\n"
	  ".BI mlp: W , W ,...\n"
	  "(dense widths),\n"
	  ".BI cnn: C , C ,...\n"
	  "(a conv block with 2x2 max pooling per width),\n"
	  ".BI resnet: B , B ,...[:w W ]\n"
	  "(basic blocks per group, base width\n"
	  ".IR W ,\n"
	  "16 by default; every group after the first halves the resolution and\n"
	  "doubles the width).",
	  CLI, "[model] spec", "the model belongs to the study", TT_TO_FIXED, NULL },
	{ "data", "SRC", TT_TO_STRING, 0, 0, NULL, OFF(data), "fashion-mnist", NULL,
	  "fashion-mnist, synthetic, or a directory of IDX files",
	  ".B fashion-mnist\n"
	  "(from\n"
	  ".IR /usr/share/datasets/fashion-mnist ,\n"
	  "Debian package dataset-fashion-mnist),\n"
	  ".B synthetic\n"
	  "(a seeded generated set), or a directory holding\n"
	  ".IR train-images-idx3-ubyte \", \" train-labels-idx1-ubyte ,\n"
	  ".IR t10k-images-idx3-ubyte \" and \" t10k-labels-idx1-ubyte ,\n"
	  "each raw or gzipped.",
	  CLI, "[data] source", DATA_WHY, TT_TO_FIXED, NULL },
	{ "train-size", "N", TT_TO_INT, 1, 1e7, NULL, OFF(train_size), "55000", NULL,
	  "training examples carved from the training set", NULL,
	  CLI, "[data] train_size", DATA_WHY, TT_TO_FIXED, NULL },
	{ "val-size", "N", TT_TO_INT, 0, 1e7, NULL, OFF(val_size), "5000", NULL,
	  "held-out validation examples from the training set",
	  "Held-out validation examples, disjoint from the training examples.",
	  CLI, "[data] val_size", DATA_WHY, TT_TO_FIXED, NULL },
	{ "trainable", "Z|all", TT_TO_DEPTH, 1, 64, NULL, OFF(trainable), "all", NULL,
	  "train only the last Z stages; the rest stay frozen",
	  "Train only the last\n"
	  ".I Z\n"
	  "stages; the first ones stay frozen.",
	  CLI, "[fidelity] min_trainable",
	  "the fidelity ladder sets each rung's trainable stages", TT_TO_FIXED, NULL },
	{ "frozen-bn", "batch|fixed", TT_TO_CHOICE, 0, 0, "batch|fixed", OFF(frozen_bn),
	  "fixed", NULL,
	  "frozen stages' batch norms: running statistics set once, or each batch's",
	  "How the batch norms of the frozen stages normalise while training.\n"
	  ".B fixed\n"
	  "sets their running statistics once, before the first step of a fresh\n"
	  "model, as the mean of the batch statistics over the first 2048 training\n"
	  "examples in batches of 32, and then uses them as evaluation does: the\n"
	  "frozen prefix maps each example on its own, so its output can be cached\n"
	  "(see\n"
	  ".BR --feature-cache ).\n"
	  ".B batch\n"
	  "normalises with each batch's statistics and updates the running ones,\n"
	  "as a trained stage does (how tunetop ran before this option existed).",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "feature-cache", "MIB", TT_TO_DOUBLE, 0, 1e9, NULL, OFF(feature_cache), "1024",
	  NULL,
	  "memory for the frozen prefix's cached outputs; 0: off",
	  "Memory in MiB for the frozen-prefix feature cache: when the frozen\n"
	  "prefix maps each example on its own\n"
	  ".RB ( --frozen-bn\n"
	  "fixed, or no batch norm in it), the input is not augmented, no\n"
	  "training method is on and the prefix does at least 32 multiply-adds\n"
	  "per float of its output (a stem alone is cheaper to run again than to\n"
	  "keep), each example's prefix output is computed once\n"
	  "and later epochs run only the trainable stages.  A set of examples\n"
	  "whose features do not fit is recomputed each time.  The numbers are\n"
	  "those of the run without the cache; the compute reported\n"
	  ".RB ( train_macs )\n"
	  "counts only what was computed.",
	  CLI, "[study] feature_cache", "the study's trials share one cache",
	  TT_TO_FIXED, NULL },
	{ "epochs", "E", TT_TO_INT, 1, 100000, NULL, OFF(epochs), "10", NULL,
	  "passes over the training examples", NULL,
	  CLI, "[fidelity] epochs", "the fidelity ladder sets each rung's epochs",
	  TT_TO_FIXED, NULL },
	{ "steps", "S", TT_TO_LONG, 1, 1e12, NULL, OFF(steps), NULL, "off",
	  "train exactly S steps instead of whole epochs",
	  "Train exactly\n"
	  ".I S\n"
	  "steps instead of whole epochs.",
	  CLI, "[fidelity] epochs", "the fidelity ladder sets each rung's length",
	  TT_TO_FIXED, NULL },
	{ "batch", "B", TT_TO_INT, 1, 65536, NULL, OFF(batch), "128", NULL,
	  "batch size", NULL, CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "optimizer", "sgd|adamw", TT_TO_CHOICE, 0, 0, "sgd|adamw", OFF(opt.kind),
	  "sgd", NULL, "SGD with momentum, or AdamW",
	  "SGD with momentum (coupled weight decay) or AdamW (decoupled).",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	/* 0.05 for sgd; tt_trainopt_lr_follow gives adamw its own */
	{ "lr", "X", TT_TO_FLOAT, 1e-12, 1e3, NULL, OFF(opt.lr), "0.05",
	  "0.05 (sgd), 0.001 (adamw)", "peak learning rate", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "momentum", "M", TT_TO_FLOAT, 0, 0.9999, NULL, OFF(opt.momentum), "0.9", NULL,
	  "SGD momentum", NULL, CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "nesterov", NULL, TT_TO_FLAG, 0, 0, NULL, OFF(opt.nesterov), "off", NULL,
	  "Nesterov momentum", NULL, CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "weight-decay", "W", TT_TO_FLOAT, 0, 1, NULL, OFF(opt.weight_decay), "5e-4",
	  NULL, "weight decay (coupled for SGD, decoupled for AdamW)", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "schedule", "constant|step|cosine", TT_TO_CHOICE, 0, 0,
	  "constant|step|cosine", OFF(opt.schedule), "cosine", NULL,
	  "learning-rate schedule after warmup",
	  "Learning-rate schedule after warmup;\n"
	  ".B step\n"
	  "multiplies the rate by 0.1 at half and at three quarters of the run.",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "warmup", "N", TT_TO_LONG, 0, 1e12, NULL, OFF(opt.warmup), "0", NULL,
	  "linear warmup steps",
	  "Linear warmup over the first\n"
	  ".I N\n"
	  "steps.",
	  CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "label-smoothing", "E", TT_TO_FLOAT, 0, 0.999, NULL, OFF(label_smoothing),
	  "0", NULL, "label smoothing of the cross-entropy", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "augment", NULL, TT_TO_FLAG, 0, 0, NULL, OFF(augment), "off", NULL,
	  "random crop (padding 2) and horizontal flip",
	  "Random crop from a copy padded by 2 pixels, and horizontal flips.",
	  CLI, "[data] augment", DATA_WHY, TT_TO_FIXED, NULL },
	{ "test", NULL, TT_TO_FLAG, 0, 0, NULL, OFF(test), "off", NULL,
	  "also report test-set accuracy",
	  "Also report the accuracy on the test set.",
	  CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "seed", "N", TT_TO_U64, 0, 9.2e18, NULL, OFF(seed), "1", NULL,
	  "seed of initialisation, split, order and augmentation",
	  "Seed of the initialisation, the split, the order and the augmentation; a\n"
	  "run is reproducible from it.",
	  CLI, "[study] seed", "one seed keys every trial's random streams",
	  TT_TO_FIXED, NULL },
	{ "threads", "T", TT_TO_INT, 1, 1024, NULL, OFF(threads), NULL, "all cores",
	  "compute threads (per worker in a study)", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "backend", "NAME", TT_TO_STRING, 0, 0, NULL, OFF(backend), "cpu", NULL,
	  "compute backend: cpu, cpu-ref (cpu without its fast paths), or cuda "
	  "when built with CUDA=1",
	  "Compute backend:\n"
	  ".B cpu\n"
	  "always,\n"
	  ".B cpu\\-ref\n"
	  "the same without its fast paths (direct convolution kernels, fused\n"
	  "operations): slower, the reference they are tested against,\n"
	  ".B cuda\n"
	  "when built with CUDA=1.",
	  CLI | TRAIN, NULL, NULL, TT_TO_FIXED, check_backend },
	{ "init", "FILE", TT_TO_STRING, 0, 0, NULL, OFF(init), NULL, "the seed's weights",
	  "start from a checkpoint --save-checkpoint wrote (a new head when the "
	  "classes differ)",
	  "Start from the weights and batch-norm statistics of a checkpoint that\n"
	  ".B \\-\\-save\\-checkpoint\n"
	  "wrote for the same model spec, with a new head (the seed's) when its\n"
	  "class count differs; the optimizer starts afresh.  A study may search\n"
	  "it:\n"
	  ".B init = choice a.ckpt, b.ckpt\n"
	  "in [space] (paths relative to the study file).",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "save-checkpoint", "FILE", TT_TO_STRING, 0, 0, NULL, OFF(save_checkpoint), NULL,
	  "off", "write the run's last checkpoint to FILE, for --init",
	  "Write the run's last checkpoint (its weights, batch-norm statistics,\n"
	  "optimizer state and position) to\n"
	  ".IR FILE ,\n"
	  "replaced whole (written beside it, then renamed), for\n"
	  ".B \\-\\-init\n"
	  "or a study's\n"
	  ".BR init .",
	  CLI, "[study] keep_checkpoints",
	  "a study keeps its trials' checkpoints in its database", TT_TO_FIXED, NULL },
	{ "gates", "S[,B[,A]]", TT_TO_GATES, 0, 0, NULL, OFF(gates), NULL, "off",
	  "prune units and residual layers while training, keeping about 1/(1+S) "
	  "of the cost: strength S, layer-vs-unit balance B (0.5), "
	  "FLOPs-vs-parameters share A (0.5)",
	  "Complexity-aware training: every unit (neuron or channel) of a trainable\n"
	  "stage and every residual branch gets a Bernoulli gate whose probability is\n"
	  "learned with the weights against the expected FLOPs and parameters the\n"
	  "gates leave on.\n"
	  ".I S\n"
	  "is the pruning strength (0 to 1000; 0 trains ungated): the run ends\n"
	  "with about 1/(1+S) of the cost of the ungated network (S = 1 keeps half,\n"
	  "S = 3 a quarter), on any model.\n"
	  ".I B\n"
	  "is the balance of layer (1) against unit (0) pruning (default 0.5),\n"
	  ".I A\n"
	  "the share of FLOPs (1) against parameters (0) in the cost (default 0.5).\n"
	  "The first epoch trains the weights only, and layer gates stay still for\n"
	  "two epochs.  Then the target cost falls from 1 to 1/(1+S) over half of\n"
	  "the gated epochs, and a multiplier on the cost follows it (it grows while\n"
	  "the expected cost is above the target, shrinks while below); the other\n"
	  "half settles every probability at 0 or 1.  A unit's worth is scored from\n"
	  "both ends, the loss's slope along its gate when sampled on and when\n"
	  "sampled off.  A structure whose probability stays near zero is pruned\n"
	  "for good, and at every epoch end the network is rebuilt without it:\n"
	  "smaller matrix products, fewer bytes.\n"
	  "This departs from the formulation first written for tunetop, whose fixed\n"
	  "strength let a layer's units cross over together (FLOPs kept fell from\n"
	  "0.54 to 0.18 between strengths 1.5 and 2 on a ResNet) and whose on-only\n"
	  "score is about 0 for every unit of a trained network.\n"
	  "At the end every probability is rounded to 0 or 1 (the JSON says how\n"
	  "many were still inside); with three epochs or more this happens at the\n"
	  "start of the last epoch, which fine-tunes the rounded network with its\n"
	  "gates fixed.\n"
	  "The JSON result gains a\n"
	  ".B gates\n"
	  "object: expected and actual FLOPs and parameters kept (fractions of the\n"
	  "ungated network), units and layers kept per stage and the final masks.\n"
	  "The stem, the head and frozen stages carry no gates; when no trainable\n"
	  "stage has any, the run trains ungated and says so on standard error.",
	  CLI, "[train] gate-strength, gate-balance and gate-flops-share",
	  "each knob of --gates has its own key, so that each can be searched",
	  TT_TO_FIXED, NULL },
	{ "gate-strength", "S", TT_TO_DOUBLE, 0, 1000, NULL, OFF(gates.strength), "0",
	  NULL, "complexity-aware training: how hard the gates prune units and "
	  "residual layers (--gates S), keeping about 1/(1+S) of the cost; 0 "
	  "trains the network ungated", NULL,
	  TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "gate-balance", "B", TT_TO_DOUBLE, 0, 1, NULL, OFF(gates.balance), "0.5",
	  NULL, "gates: layer (1) versus unit (0) pruning (--gates S,B)", NULL,
	  TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "gate-flops-share", "A", TT_TO_DOUBLE, 0, 1, NULL, OFF(gates.flops_share),
	  "0.5", NULL, "gates: weight of FLOPs (1) versus parameters (0) in the "
	  "cost (--gates S,B,A)", NULL, TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "evograd", "WHAT[,K[,SIGMA[,TAU]]]", TT_TO_EVOGRAD, 0, 0, NULL, OFF(evograd),
	  NULL, "off",
	  "learn WHAT (wd, mwn or rotate) inside the run with EvoGrad: K perturbed "
	  "copies (2), noise SIGMA (0.001), temperature TAU (0.05)",
	  "EvoGrad: after every training step (or every\n"
	  ".IR N th,\n"
	  ".BR \\-\\-evograd\\-every )\n"
	  "a meta-step perturbs the trainable weights into\n"
	  ".I K\n"
	  "copies (noise of scale\n"
	  ".IR SIGMA ),\n"
	  "weighs them by a softmax of their training losses at temperature\n"
	  ".IR TAU ,\n"
	  "and moves the hyperparameters along the validation loss's gradient at the\n"
	  "weighted copy: first-order, one validation backward, no second\n"
	  "derivatives.\n"
	  ".I WHAT\n"
	  "is\n"
	  ".B wd\n"
	  "(the weight decay, from\n"
	  ".BR \\-\\-weight\\-decay ,\n"
	  "learned as its logarithm),\n"
	  ".B mwn\n"
	  "(a Meta-Weight-Net, 1-100-1 with a sigmoid output, that weighs each\n"
	  "example's training loss by the loss itself) or\n"
	  ".B rotate\n"
	  "(the training images' rotation angle in degrees, from\n"
	  ".BR \\-\\-rotate ,\n"
	  "applied by bilinear resampling; every stage must train).\n"
	  "The paper's\n"
	  ".I K\n"
	  "= 2 gives a noisy hypergradient: for\n"
	  ".B rotate\n"
	  "on Fashion-MNIST,\n"
	  ".B rotate,8,0.01\n"
	  "finds a 30-degree rotation within about 200 steps, where\n"
	  ".B rotate\n"
	  "takes several times longer.\n"
	  "The meta-step draws its validation batches from the first\n"
	  ".B \\-\\-clean\\-val\n"
	  "validation examples.\n"
	  "One weight copy and one validation gradient are booked as the memory kind\n"
	  ".BR method .\n"
	  "The JSON result gains an\n"
	  ".B evograd\n"
	  "object: the final values, their path, the meta-steps' share of the time and\n"
	  "the extra bytes.  Not with\n"
	  ".BR \\-\\-gates .",
	  CLI, "[train] evograd-what, evograd-k, evograd-sigma and evograd-tau",
	  "each knob of --evograd has its own key, so that each can be searched",
	  TT_TO_FIXED, NULL },
	{ "evograd-what", "WHAT", TT_TO_CHOICE, 0, 0, "off|wd|mwn|rotate",
	  OFF(evograd.what), "off", NULL,
	  "EvoGrad: what the run learns inside itself (--evograd WHAT); off: nothing",
	  NULL, TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "evograd-k", "K", TT_TO_INT, 2, 1024, NULL, OFF(evograd.k), "2", NULL,
	  "EvoGrad: perturbed copies of the weights per meta-step (--evograd WHAT,K)",
	  NULL, TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "evograd-sigma", "SIGMA", TT_TO_DOUBLE, 1e-9, 1, NULL, OFF(evograd.sigma),
	  "0.001", NULL, "EvoGrad: scale of the copies' noise (--evograd WHAT,K,SIGMA)",
	  NULL, TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "evograd-tau", "TAU", TT_TO_DOUBLE, 1e-6, 1000, NULL, OFF(evograd.tau), "0.05",
	  NULL, "EvoGrad: temperature of the copies' softmax (--evograd WHAT,K,SIGMA,TAU)",
	  NULL, TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "evograd-every", "N", TT_TO_INT, 1, 1000000, NULL, OFF(evograd.every), "1", NULL,
	  "EvoGrad: a meta-step after every N-th training step", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "evograd-noise", "rademacher|gaussian", TT_TO_CHOICE, 0, 0,
	  "rademacher|gaussian", OFF(evograd.noise), "rademacher", NULL,
	  "EvoGrad: the copies' noise, +-SIGMA or SIGMA N(0,1) per weight",
	  "EvoGrad: the copies' noise,\n"
	  ".RI \\(+- SIGMA\n"
	  "or\n"
	  ".I SIGMA\n"
	  "times a standard normal draw per weight, regenerated from its key (seed,\n"
	  "step, copy) rather than stored.",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "evograd-opt", "adam|sgd|nesterov", TT_TO_CHOICE, 0, 0,
	  "adam|sgd|nesterov", OFF(evograd.opt), "adam", NULL,
	  "EvoGrad: the learned hyperparameters' own optimizer",
	  "EvoGrad: the learned hyperparameters' own optimizer:\n"
	  ".BR adam ,\n"
	  "plain\n"
	  ".BR sgd ,\n"
	  "or\n"
	  ".B nesterov\n"
	  "(SGD with Nesterov momentum 0.9 and, on the Meta-Weight-Net's parameters,\n"
	  "the run's weight decay, as the reference code trains it; at its rate of\n"
	  "0.001 the network hardly moves in a short run).",
	  CLI | TRAIN, NULL, NULL, TT_TO_CHOICES, NULL },
	{ "evograd-lr", "X", TT_TO_DOUBLE, 0, 100, NULL, OFF(evograd.lr), "0",
	  "0.01 (wd, on its logarithm), 0.5 (rotate, degrees), 0.0003 (mwn)",
	  "EvoGrad: the learned hyperparameters' learning rate; 0: WHAT's own", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "rotate", "DEG", TT_TO_DOUBLE, -180, 180, NULL, OFF(rotate), "0", NULL,
	  "the training images' starting rotation, which --evograd rotate learns",
	  "The training images' rotation in degrees (counter-clockwise, bilinear) at\n"
	  "the start; only with\n"
	  ".BR \\-\\-evograd\\ rotate ,\n"
	  "which learns it.",
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "label-noise", "P", TT_TO_DOUBLE, 0, 1, NULL, OFF(label_noise), "0", NULL,
	  "flip a fraction P of the training labels to another class (seeded)",
	  "Give a fraction\n"
	  ".I P\n"
	  "of the training labels another class, chosen uniformly (symmetric noise,\n"
	  "seeded); the validation and test sets stay clean.",
	  CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "clean-val", "N", TT_TO_INT, 0, 10000000, NULL, OFF(clean_val), "0",
	  "all of --val-size",
	  "validation examples the EvoGrad meta-step draws from (the first N)",
	  NULL, CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "val-rotate", "DEG", TT_TO_DOUBLE, -180, 180, NULL, OFF(val_rotate), "0", NULL,
	  "rotate the validation and test images by DEG degrees",
	  NULL, CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "continual", "split-fmnist:T", TT_TO_CONTINUAL, 1, TT_CL_MAX_TASKS, NULL,
	  OFF(continual.tasks), NULL, "off",
	  "continual learning: T experiences of the data's classes in sequence, task id given",
	  "Continual learning with partial hypernetworks (Hemati et al., CoLLAs 2023): the\n"
	  "training set's classes are split into\n"
	  ".I T\n"
	  "experiences of consecutive classes, or of classes in the order of\n"
	  ".BR \\-\\-cl\\-order\n"
	  "(two each for Fashion-MNIST and\n"
	  ".IR T =5;\n"
	  ".B split:\n"
	  "names the same split for any IDX set), trained one after the other with\n"
	  "the task id known, with the strategy of\n"
	  ".BR \\-\\-strategy .\n"
	  "The run's steps (\n"
	  ".B \\-\\-epochs\n"
	  "over the whole training set, or\n"
	  ".BR \\-\\-steps )\n"
	  "are shared equally by the experiences.  Batch norm always uses the\n"
	  "batch's statistics.  After each experience the accuracy on every task so\n"
	  "far fills a row of the accuracy matrix, measured on the test set with\n"
	  ".BR \\-\\-test ,\n"
	  "else on the validation set; the validation numbers of the run are the\n"
	  "mean over the tasks seen.  The JSON result gains a\n"
	  ".B continual\n"
	  "object: the matrix, the average accuracy (ACA), forgetting per task and\n"
	  "on average, seconds per experience and the peak bytes.  Not with\n"
	  ".B \\-\\-gates\n"
	  "or\n"
	  ".BR \\-\\-evograd .",
	  CLI, "[train] continual-tasks", "a study file names the number of experiences",
	  TT_TO_FIXED, NULL },
	{ "continual-tasks", "T", TT_TO_INT, 0, TT_CL_MAX_TASKS, NULL, OFF(continual.tasks),
	  "0", NULL, "continual learning: experiences of the data's classes (--continual "
	  "split:T); 0: off", NULL, TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "strategy", "naive|replay:K|hn:K|hn-full", TT_TO_STRATEGY, 0, 0, NULL,
	  OFF(continual), NULL, "naive",
	  "continual strategy: fine-tune all, latent replay or hypernetwork behind a "
	  "front of K blocks, or all generated",
	  "The continual strategy:\n"
	  ".B naive\n"
	  "fine-tunes every stage;\n"
	  ".BI replay: K\n"
	  "(LR-K) trains everything in the first experience, then freezes the front\n"
	  "(the stem and the first\n"
	  ".I K\n"
	  "blocks) and adds\n"
	  ".B \\-\\-replay\\-batch\n"
	  "stored front features of earlier tasks to each step from a class-balanced\n"
	  "buffer of\n"
	  ".B \\-\\-replay\\-size\n"
	  "items;\n"
	  ".BI hn: K\n"
	  "(HN-K) trains the same front in the first experience and freezes it, and a\n"
	  "hypernetwork generates every stage behind it per task, held to its\n"
	  "snapshot on earlier tasks by the look-ahead regulariser\n"
	  "(\n"
	  ".BR \\-\\-hn\\-beta );\n"
	  ".B hn\\-full\n"
	  "generates every stage.  The frozen front is the model's frozen prefix\n"
	  "after the first experience: its savings are real allocations.",
	  CLI, "[train] cl-strategy and cl-split", "each part has its own key, so that "
	  "the split can be searched", TT_TO_FIXED, NULL },
	{ "cl-strategy", "naive|replay|hn|hn-full", TT_TO_CHOICE, 0, 0,
	  "naive|replay|hn|hn-full", OFF(continual.strategy), "naive", NULL,
	  "continual strategy (--strategy without its :K)", NULL, TRAIN, NULL, NULL,
	  TT_TO_CHOICES, NULL },
	{ "cl-split", "K", TT_TO_INT, 0, 62, NULL, OFF(continual.split), "0", NULL,
	  "continual: blocks in the frozen front of replay and hn (--strategy replay:K)",
	  NULL, TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "cl-order", "SEED", TT_TO_INT, 0, 2147483647, NULL, OFF(continual.order), "0",
	  "classes in order",
	  "continual: split the classes in an order shuffled with SEED; 0: in order",
	  "The class order of the experiences: 0 keeps the classes in order (task\n"
	  ".I t\n"
	  "holds classes\n"
	  ".IR t*k .. t*k+k\\-1 );\n"
	  "any other value shuffles them with that seed first, as Avalanche's split\n"
	  "benchmarks do by default.  Labels are numbered within each task, in the\n"
	  "order's order, and naive and replay share one head of\n"
	  ".I k\n"
	  "outputs, so what label 0 means changes from task to task.",
	  CLI | TRAIN, NULL, NULL, TT_TO_FIXED, NULL },
	{ "replay-size", "N", TT_TO_INT, 1, 1000000, NULL, OFF(continual.replay_size), "200",
	  NULL, "latent replay: items in the class-balanced buffer of front features",
	  NULL, CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "replay-batch", "N", TT_TO_INT, 1, 65536, NULL, OFF(continual.replay_batch), "64",
	  NULL, "latent replay: stored items added to each training step", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
	{ "hn-beta", "X", TT_TO_DOUBLE, 0, 1000, NULL, OFF(continual.beta), "0.5", NULL,
	  "hypernetwork: weight of the look-ahead regulariser on earlier tasks", NULL,
	  CLI | TRAIN, NULL, NULL, TT_TO_REAL, NULL },
	{ "hn-reg-tasks", "N", TT_TO_INT, 1, TT_CL_MAX_TASKS, NULL, OFF(continual.reg_tasks),
	  "20", NULL, "hypernetwork: earlier tasks the regulariser samples per step, at most",
	  NULL, CLI | TRAIN, NULL, NULL, TT_TO_INTEGER, NULL },
};

const int tt_trainopt_count = (int)(sizeof tt_trainopts / sizeof tt_trainopts[0]);

static const struct { const char *word; int value; } bool_words[] = {
	{ "true", 1 }, { "false", 0 }, { "yes", 1 }, { "no", 0 },
	{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 },
};

int tt_trainopt_bool(const char *v, int *out)
{
	for (size_t w = 0; w < sizeof bool_words / sizeof bool_words[0]; w++)
		if (strcmp(v, bool_words[w].word) == 0) {
			*out = bool_words[w].value;
			return 0;
		}
	return -1;
}

const tt_trainopt *tt_trainopt_find(const char *name)
{
	for (int i = 0; name && i < tt_trainopt_count; i++)
		if (strcmp(tt_trainopts[i].name, name) == 0)
			return &tt_trainopts[i];
	return NULL;
}

int tt_trainopt_is_integer(const tt_trainopt *o)
{
	return o->type == TT_TO_INT || o->type == TT_TO_LONG || o->type == TT_TO_U64;
}

int tt_trainopt_is_number(const tt_trainopt *o)
{
	return tt_trainopt_is_integer(o) || o->type == TT_TO_FLOAT ||
	       o->type == TT_TO_DOUBLE;
}

const char *tt_trainopt_defdoc(const tt_trainopt *o)
{
	return o->defdoc ? o->defdoc : o->def;
}

const char *tt_trainopt_expect(const tt_trainopt *o, char *buf, size_t n)
{
	switch (o->type) {
	case TT_TO_INT:
	case TT_TO_LONG:
	case TT_TO_U64:
		snprintf(buf, n, "an integer in %.0f..%.0f", o->lo, o->hi);
		break;
	case TT_TO_FLOAT:
	case TT_TO_DOUBLE:
		snprintf(buf, n, "a number in [%g, %g]", o->lo, o->hi);
		break;
	case TT_TO_FLAG:
		snprintf(buf, n, "true or false (also yes/no, on/off, 1/0)");
		break;
	case TT_TO_CHOICE:
		snprintf(buf, n, "one of %s", o->choices);
		break;
	case TT_TO_STRING:
		snprintf(buf, n, "a non-empty text");
		break;
	case TT_TO_DEPTH:
		snprintf(buf, n, "'all' or %.0f..%.0f", o->lo, o->hi);
		break;
	case TT_TO_GATES:
		snprintf(buf, n, "STRENGTH[,BALANCE[,FLOPS_SHARE]]");
		break;
	case TT_TO_EVOGRAD:
		snprintf(buf, n, "WHAT[,K[,SIGMA[,TAU]]]");
		break;
	default:
		snprintf(buf, n, "nothing");
	}
	return buf;
}

/*
 * --evograd WHAT[,K[,SIGMA[,TAU]]]: each part read by the row of its own
 * [train] key, so ranges and messages are those rows'.  Into c (may be
 * NULL) only when every part is good.  Returns WHAT, or -1 with what was
 * expected in buf.
 */
static int parse_evograd(const char *v, tt_train_config *c, char *buf, size_t n)
{
	static const char *const key[] = { "evograd-what", "evograd-k", "evograd-sigma",
	                                   "evograd-tau" };
	static const char *const part[] = { "WHAT", "K", "SIGMA", "TAU" };
	tt_train_config tmp;
	char one[64], why[160];
	double what = 0;
	if (c)
		tmp = *c;
	else
		tt_train_defaults(&tmp);
	const char *p = v;
	for (int i = 0;; i++) {
		size_t len = strcspn(p, ",");
		if (i == 4 || len >= sizeof one) {
			snprintf(buf, n, "WHAT[,K[,SIGMA[,TAU]]]%s", i == 4 ? ": more than four "
			         "values" : "");
			return -1;
		}
		memcpy(one, p, len);
		one[len] = 0;
		const tt_trainopt *o = tt_trainopt_find(key[i]);
		const char *e = tt_trainopt_parse(o, one, &tmp, i ? NULL : &what, why,
		                                  sizeof why);
		if (e) {
			snprintf(buf, n, "WHAT[,K[,SIGMA[,TAU]]] with %s %s (found '%s')", part[i],
			         e, one);
			return -1;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	if (c)
		c->evograd = tmp.evograd;
	return (int)what;
}

const char *tt_trainopt_parse(const tt_trainopt *o, const char *v,
                              tt_train_config *c, double *num, char *buf,
                              size_t n)
{
	void *dst = c ? (char *)c + o->off : NULL;
	long long i = 0;
	double x = 0;
	int k = 0;
	switch (o->type) {
	case TT_TO_DEPTH:
		if (strcmp(v, "all") == 0) {
			i = 0;
			goto store_int;
		}
		/* fall through */
	case TT_TO_INT:
	case TT_TO_LONG:
	case TT_TO_U64:
		/* compared as integers, as the study keys are: near 2^63 a double
		 * cannot tell 9200000000000000001 from the maximum 9.2e18 */
		if (tt_parse_ll(v, &i) || i < (long long)o->lo || i > (long long)o->hi)
			return tt_trainopt_expect(o, buf, n);
	store_int:
		if (dst && o->type == TT_TO_LONG)
			*(long *)dst = (long)i;
		else if (dst && o->type == TT_TO_U64)
			*(uint64_t *)dst = (uint64_t)i;
		else if (dst)
			*(int *)dst = (int)i;
		x = (double)i;
		break;
	case TT_TO_FLOAT:
	case TT_TO_DOUBLE:
		if (tt_parse_num(v, &x) || x < o->lo || x > o->hi)
			return tt_trainopt_expect(o, buf, n);
		if (dst && o->type == TT_TO_FLOAT)
			*(float *)dst = (float)x;
		else if (dst)
			*(double *)dst = x;
		break;
	case TT_TO_FLAG:
		if (tt_trainopt_bool(v, &k))
			return tt_trainopt_expect(o, buf, n);
		if (dst)
			*(int *)dst = k;
		x = k;
		break;
	case TT_TO_CHOICE:
		if ((k = tt_parse_choice(o->choices, v)) < 0)
			return tt_trainopt_expect(o, buf, n);
		if (dst)
			*(int *)dst = k;
		x = k;
		break;
	case TT_TO_STRING:
		if (!*v)
			return tt_trainopt_expect(o, buf, n);
		if (o->check) {
			const char *why = o->check(v, buf, n);
			if (why)
				return why;
		}
		if (dst)
			*(const char **)dst = v;
		break;
	case TT_TO_GATES: {
		tt_err e = {0};
		tt_gate_config g;
		if (c)
			g = c->gates;
		else
			tt_gate_defaults(&g);
		if (tt_gate_parse(v, &g, &e)) {
			snprintf(buf, n, "%s", e.msg);
			return buf;
		}
		if (dst)
			*(tt_gate_config *)dst = g;
		x = g.strength;
		break;
	}
	case TT_TO_EVOGRAD:
		if ((k = parse_evograd(v, c, buf, n)) < 0)
			return buf;
		x = k;
		break;
	case TT_TO_CONTINUAL: {
		const char *num = strncmp(v, "split-fmnist:", 13) == 0 ? v + 13
		                  : strncmp(v, "split:", 6) == 0 ? v + 6 : NULL;
		if (!num || tt_parse_ll(num, &i) || i < (long long)o->lo || i > (long long)o->hi) {
			snprintf(buf, n, "split-fmnist:T or split:T with T in 1..%d", TT_CL_MAX_TASKS);
			return buf;
		}
		if (c)
			c->continual.tasks = (int)i;
		x = (double)i;
		break;
	}
	case TT_TO_STRATEGY: {
		static const char *const word[] = { "naive", "replay", "hn", "hn-full" };
		size_t len = strcspn(v, ":");
		k = -1;
		for (int w = 0; w < 4; w++)
			if (strlen(word[w]) == len && strncmp(v, word[w], len) == 0)
				k = w;
		int needs_k = k == TT_CL_REPLAY || k == TT_CL_HN;
		i = 0;
		if (k < 0 || (needs_k && (!v[len] || tt_parse_ll(v + len + 1, &i) || i < 0 ||
		                          i > 62)) || (!needs_k && v[len])) {
			snprintf(buf, n, "naive, replay:K, hn:K or hn-full, K in 0..62");
			return buf;
		}
		if (c) {
			c->continual.strategy = k;
			c->continual.split = (int)i;
		}
		x = k;
		break;
	}
	default:
		return tt_trainopt_expect(o, buf, n);
	}
	if (num)
		*num = x;
	return NULL;
}

void tt_trainopt_lr_follow(tt_train_config *c)
{
	char buf[128];
	const tt_trainopt *lr = tt_trainopt_find("lr");
	if (c->opt.kind == TT_OPT_ADAMW)
		c->opt.lr = 1e-3f;
	else
		TT_ASSERT(tt_trainopt_parse(lr, lr->def, c, NULL, buf, sizeof buf) == NULL);
}

/* ---- help and the man page ---------------------------------------------- */

void tt_trainopt_help(FILE *f)
{
	for (int i = 0; i < tt_trainopt_count; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		if (!(o->where & TT_TO_CLI))
			continue;
		char lhs[64];
		snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->meta ? " " : "",
		         o->meta ? o->meta : "");
		fprintf(f, "  %-30s %s (default: %s)\n", lhs, o->help,
		        tt_trainopt_defdoc(o));
	}
	fprintf(f, "  %-30s %s\n", "-h, --help", "show this help");
}

/* Text for roff: '-' as '\-', '\' as '\e'. */
static void roff(FILE *f, const char *t)
{
	for (; *t; t++) {
		if (*t == '-')
			fputs("\\-", f);
		else if (*t == '\\')
			fputs("\\e", f);
		else
			fputc(*t, f);
	}
}

void tt_trainopt_man(FILE *f)
{
	for (int i = 0; i < tt_trainopt_count; i++) {
		const tt_trainopt *o = &tt_trainopts[i];
		if (!(o->where & TT_TO_CLI))
			continue;
		fputs(".TP\n", f);
		/* a flag bold; a choice's words bold; a value's name italic */
		fputs(!o->meta ? ".B \\-\\-" : o->type == TT_TO_CHOICE ? ".BR \\-\\-"
		                                                       : ".BI \\-\\-", f);
		roff(f, o->name);
		if (o->meta) {
			fputs(" \" ", f);
			roff(f, o->meta);
			fputc('"', f);
		}
		fputc('\n', f);
		if (o->man) {
			fputs(o->man, f);
		} else {
			fputc(o->help[0] >= 'a' && o->help[0] <= 'z' ? o->help[0] - 'a' + 'A'
			                                            : o->help[0], f);
			roff(f, o->help + 1);
			fputc('.', f);
		}
		fputs("\nDefault: ", f);
		roff(f, tt_trainopt_defdoc(o));
		fputs(".\n", f);
	}
	fputs(".TP\n.BR \\-h \", \" \\-\\-help\nShow the options with their "
	      "defaults.\n", f);
}
