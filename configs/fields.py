"""Every setting any model has: its type, its help and the values it accepts, written once.

A model's schema (configs/<model>.py) picks its fields from here by name; ``main.py``'s flags are
generated from them (a flag with the same name means the same thing for every model that has it).
Defaults are not here: they are the presets' values.
"""

from __future__ import annotations

import dataclasses

from configs.schema import Check, Field, at_least, in_range, non_negative, odd_positive, positive

_p, _nn = positive(), non_negative()

FIELDS: dict[str, Field] = {
    # ---- every model: the run
    "dataset": Field(str, "Dataset the preset is for (css for tirg; css_captions | cub | flowers | any converted "
                          "text-to-image dir for the generators; css_edits for geneva). Without --data_dir, css / "
                          "css_captions / css_edits are generated."),
    "batch_size": Field(int, "Global batch size (summed over replicas).", check=_p),
    "num_iters": Field(int, "Total training iterations.", check=_nn),
    "log_every": Field(int, "Iterations between log lines / TensorBoard scalars.", check=_p),
    "eval_every": Field(int, "Iterations between evaluations.", check=_p),
    "ckpt_every": Field(int, "Iterations between checkpoints.", check=_p),
    "seed": Field(int, "Random seed: every network's initial weights, noise and data order.", check=_nn),
    "steps_per_loop": Field(int, "Train steps per tf.function call.", check=_p),
    "jit_compile": Field(bool, "Compile the train step with XLA."),
    # ---- optimisation
    "learning_rate": Field(float, "Initial learning rate.", check=_p),
    "optimizer": Field(str, "Optimiser: adam | rmsprop (GANs) | sgd (srcnn).", choices=("adam", "rmsprop", "sgd")),
    "momentum": Field(float, "SGD momentum.", check=in_range(0.0, 1.0, high_open=True)),
    "weight_decay": Field(float, "Weight decay.", check=_nn),
    "beta1": Field(float, "Adam beta1.", check=in_range(0.0, 1.0, high_open=True)),
    "beta2": Field(float, "Adam beta2.", check=in_range(0.0, 1.0, high_open=True)),
    "lr_decay": Field(float, "Multiply the learning rate by this every --lr_decay_every steps (1 = constant).",
                      check=Check(lambda v: 0.0 < v <= 1.0, "in (0, 1]")),
    "lr_decay_factor": Field(float, "tirg: step decay factor of the learning rate.", check=in_range(0.0, 1.0)),
    "lr_decay_every": Field(int, "Steps between learning-rate decays (0 = never).", check=_nn),
    "lr_min_ratio": Field(float, "css_classifier: cosine decay to this fraction of --learning_rate.",
                          check=in_range(0.0, 1.0)),
    "encoder_learning_rate": Field(float, "Adam learning rate of the co-trained BiLSTM sentence / CNN image encoders "
                                          "(geneva: of the previous-image encoder and the instruction projection).",
                                   check=_p),
    "rnn_grad_clip": Field(float, "damsm: clip the text encoder's gradients to this global norm (geneva: the turn GRU's "
                                  "and the instruction encoder's, each); 0 = off.", check=_nn),
    # ---- data
    "image_size": Field(int, "Image size the model reads / draws (stackgan: Stage-I's).", check=_p),
    "random_flip": Field(bool, "Random horizontal flips in training (off for CSS: captions name left and right)."),
    "random_crop": Field(bool, "Resize to 76/64 of the size + random crop in training (off for CSS scenes)."),
    "max_text_len": Field(int, "Tokens kept per text.", check=_p),
    "shuffle_buffer": Field(int, "srcnn: decoded images in the shuffle buffer.", check=_p),
    # ---- evaluation and samples
    "eval_batch_size": Field(int, "Batch size of evaluation (and of --mode=eval generation).", check=_p),
    "eval_images": Field(int, "Held-out captions / images scored by --mode=eval (and DAMSM's training eval).",
                         check=_p),
    "num_samples": Field(int, "Images in the TensorBoard sample grid; --mode=generate: images per caption.", check=_p),
    "train_eval_queries": Field(int, "tirg: train queries sampled for train Recall@K (0 = skip).", check=_nn),
    "eval_batches": Field(int, "srcnn: held-out batches per evaluation.", check=_p),
    "eval_max_examples": Field(int, "css_classifier: test scenes scored per evaluation (0 = all).", check=_nn),
    "upscale_batch_size": Field(int, "srcnn: batch size of --mode=generate --upscale.", check=_p),
    # ---- TIRG
    "composition": Field(str, "tirg: how image and text are composed.",
                         choices=("tirg", "tirg_lastconv", "concat", "imgonly", "textonly")),
    "loss": Field(str, "tirg: training loss.", choices=("soft_triplet", "batch_based_classification")),
    "embed_dim": Field(int, "tirg: embedding size.", check=_p),
    "image_width": Field(int, "tirg: channels of the first ResNet stage (64 = ResNet-18).", check=_p),
    "image_blocks": Field(str, "tirg: residual blocks per stage, e.g. 2,2,2,2 (ResNet-18)."),
    "image_stem": Field(str, "tirg: imagenet (7x7/2 conv + max-pool) | small (3x3/2 conv).", choices=("imagenet", "small")),
    "image_pool": Field(str, "tirg: avg (global average pool) | flatten (keeps the spatial layout).",
                        choices=("avg", "flatten")),
    "normalize_scale": Field(float, "tirg: initial value of the learnable L2-normalisation scale.", check=_p),
    "image_padding": Field(str, "tirg: torch (PyTorch's symmetric padding on the strided ResNet layers: pad 3 / 1 / 1 "
                                "+ valid conv / max-pool) | same (TF 'same', which pads only bottom/right there).",
                           choices=("torch", "same")),
    "weight_init": Field(str, "tirg: torch (PyTorch's default initialisers and torchvision's ResNet ones, as "
                              "google/tirg) | keras (Keras's defaults).", choices=("torch", "keras")),
    "image_input_norm": Field(str, "tirg: imagenet (images to [0, 1], then ImageNet mean/std, as google/tirg's "
                                   "transforms) | none (the [-1, 1] images as read).", choices=("imagenet", "none")),
    "image_weights": Field(str, "tirg: a torchvision resnet18 state dict (.pth or .npz) to start the image encoder "
                                "from (google/tirg starts from ImageNet weights); empty = from scratch."),
    "triplet_negatives": Field(int, "tirg soft_triplet: negatives sampled per anchor among the other pairs' items, "
                                    "with google/tirg's backward (half the autodiff gradient); 0 = the mean over all "
                                    "items of other target labels, full gradient.", check=_nn),
    "weight_decay_mode": Field(str, "How --weight_decay acts: coupled (L2 added to the gradient before momentum, as "
                                    "torch.optim.SGD) | decoupled (Keras: w -= lr * wd * w).",
                               choices=("coupled", "decoupled")),
    # ---- text encoders
    "text_embed_dim": Field(int, "Word embedding size.", check=_p),
    "text_hidden_dim": Field(int, "LSTM size (per direction for the BiLSTM sentence encoder).", check=_p),
    "text_dropout": Field(float, "Dropout on the text features.", check=in_range(0.0, 1.0, high_open=True)),
    "text_encoder": Field(str, "Text conditioning: pretrained_embeddings (char-CNN-RNN in the records) | bilstm "
                               "(a sentence encoder co-trained on raw text) | word_slots (co-trained on raw text: a BiLSTM "
                               "routes each word to one of slot_grid^2 spatial slots, the vector is the per-slot sums "
                               "of word embeddings, matched cell by cell against a grid CNN) | auto (embeddings when "
                               "the records have them, else bilstm).",
                          choices=("auto", "pretrained_embeddings", "bilstm", "word_slots")),
    "slot_grid": Field(int, "text_encoder / sentence_encoder=word_slots: the spatial slots are slot_grid x slot_grid "
                            "cells of the image (gan_cls / stackgan: text_dim must be a multiple of slot_grid^2).",
                       check=_p),
    "slot_dim": Field(int, "damsm sentence_encoder=word_slots: size of each slot's vector (the sentence and global "
                           "image features are slot_grid^2 x slot_dim).", check=_p),
    "sentence_encoder": Field(str, "damsm: the sentence feature: last_state (AttnGAN: the BiLSTM's final hidden "
                                   "states) | word_slots (the BiLSTM routes each word to one of slot_grid^2 spatial "
                                   "slots; per-slot sums of word embeddings, matched cell by cell against the image's "
                                   "regions pooled to the same grid; the word features are unchanged).",
                              choices=("last_state", "word_slots")),
    "text_dim": Field(int, "Size of the co-trained BiLSTM's sentence vector.", check=_p),
    "encoder_width": Field(int, "Channels of the co-trained CNN image encoder.", check=_p),
    "match_gamma": Field(float, "Softmax sharpness of the sentence-image matching loss.", check=_p),
    "swap_negatives": Field(int, "Hard negative captions per image in the matching loss (bilstm encoder, damsm): the "
                                 "caption with one --swap_word_groups word swapped (0 = off).", check=_nn),
    "swap_word_groups": Field(str, "Words that --swap_negatives exchanges: css (colours, shapes, sizes, top/bottom, "
                                   "left/right) or groups such as 'red,blue,green;small,large'."),
    # ---- GANs
    "gan_type": Field(str, "gan_cls: gan | wgan | wgan_gp | vanilla_gan | vanilla_wgan (vanilla = unconditional).",
                      choices=("gan", "wgan", "wgan_gp", "vanilla_gan", "vanilla_wgan")),
    "z_dim": Field(int, "Noise size.", check=_p),
    "ngf": Field(int, "Generator width.", check=_p),
    "ndf": Field(int, "Discriminator width.", check=_p),
    "proj_dim": Field(int, "gan_cls: text projection size (Reed's nt).", check=_p),
    "cls": Field(bool, "Matching-aware discriminator (real/right, wrong/right, fake/right)."),
    "interp": Field(bool, "gan_cls: GAN-INT, the generator also trained on interpolated text embeddings."),
    "interp_weight": Field(float, "gan_cls: weight of the INT generator term.", check=_nn),
    "interp_beta": Field(float, "gan_cls: interpolation beta.", check=in_range(0.0, 1.0)),
    "label_smoothing": Field(float, "One-sided label smoothing: D's real target is 1 - this (BCE losses).",
                             check=in_range(0.0, 1.0, high_open=True)),
    "feature_matching": Field(bool, "gan_cls: add feature matching to the generator loss."),
    "l2_coef": Field(float, "gan_cls: feature matching weight.", check=_nn),
    "l1_loss": Field(bool, "Add L1 to the real image to the generator loss."),
    "l1_coef": Field(float, "L1 weight.", check=_nn),
    "diter": Field(int, "gan_cls: critic updates per generator update (wgan types).", check=_p),
    "clip_value": Field(float, "gan_cls: WGAN weight clipping.", check=_p),
    "gp_weight": Field(float, "gan_cls: WGAN-GP lambda; geneva: weight of the R1 gradient penalty on real images.", check=_nn),
    "d_norm": Field(str, "gan_cls: discriminator norm (auto = layer for wgan_gp, else batch).",
                    choices=("auto", "batch", "layer", "none")),
    "minibatch_discrimination": Field(bool, "gan_cls: minibatch discrimination in D."),
    "mbd_kernels": Field(int, "gan_cls: minibatch discrimination kernels.", check=_p),
    "reed_residual": Field(bool, "gan_cls: Reed's residual blocks in G and D and the BatchNorm on D's text "
                                 "projection (reedscot/icml2016 main_cls_int.lua)."),
    "mbd_kernel_dim": Field(int, "gan_cls: minibatch discrimination kernel size.", check=_p),
    # ---- StackGAN / AttnGAN
    "stage": Field(int, "stackgan: 1 (text -> --image_size) or 2 (Stage-I image + text -> --stage2_size).",
                   check=in_range(1, 2)),
    "stage2_size": Field(int, "stackgan: Stage-II output size.", check=_p),
    "stage1_workdir": Field(str, "stackgan --stage=2: the trained Stage-I run."),
    "tirg_workdir": Field(str, "stackgan_tirg: the trained --model=tirg run whose composed features condition it."),
    "source_skip": Field(bool, "stackgan_tirg: the generator also sees the source image (a conv encoder's maps joined "
                               "to the decoder at every resolution, U-Net style; the output a mask composite of "
                               "drawn and source pixels), besides the composed feature."),
    "edit_l1": Field(float, "stackgan_tirg --source_skip: weight (x l1_coef) of an extra L1 over the pixels where the "
                            "target differs from the source (the edit), averaged over those pixels.", check=_nn),
    "c_dim": Field(int, "Conditioning augmentation size.", check=_p),
    "ca_activation": Field(str, "StackGAN conditioning augmentation: relu (Linear(E -> 2 c_dim) + ReLU, StackGAN's) | "
                                "glu (Linear(E -> 4 c_dim) + GLU, StackGAN++ / AttnGAN's).", choices=("relu", "glu")),
    "kl_coef": Field(float, "Weight of the conditioning augmentation KL term.", check=_nn),
    "num_residual": Field(int, "Residual blocks in the refining generator stages.", check=_p),
    "stage1_mode": Field(str, "stackgan --stage=2: how the frozen Stage-I generator runs while Stage-II trains: train "
                              "(BatchNorm on batch statistics, its running statistics keep updating and are saved with "
                              "the Stage-II run: StackGAN-Pytorch's netG.train()) | inference (its moving statistics, "
                              "unchanged).", choices=("train", "inference")),
    "stage2_residual": Field(bool, "stackgan --stage=2: draw a correction added (before the tanh) to the bilinearly "
                                   "up-sampled Stage-I image, instead of redrawing the picture (StackGAN's Stage-II).",
                             before=False),
    "caption_embeddings": Field(int, "stackgan: training conditions on the mean of this many randomly chosen captions' "
                                     "precomputed embeddings per image (1: StackGAN-Pytorch; 4: Reed et al. / "
                                     "StackGAN-TF).", check=_p),
    "wrong_pairs": Field(str, "stackgan: D's mismatched pairs: text (each real image with the next example's text, "
                              "B-1 pairs on the real images' codes: StackGAN-Pytorch) | image (a separately drawn "
                              "image of another class with the right text: GAN-CLS).", choices=("text", "image")),
    "reuse_fakes": Field(bool, "stackgan: one generator forward per step whose fakes serve the D update and then "
                               "the G update (StackGAN-Pytorch); off: the G update draws new fakes."),
    "damsm_workdir": Field(str, "attngan: the trained --model=damsm run (frozen text / image encoders)."),
    "num_stages": Field(int, "attngan: generator stages (3 = 64/128/256 in the paper).", check=_p),
    "base_size": Field(int, "attngan: the first stage's image size.", check=_p),
    "damsm_weight": Field(float, "attngan: weight of the DAMSM loss in G's loss (LAMBDA).", check=_nn),
    "spectral_norm": Field(bool, "attngan, geneva: spectral normalisation in the discriminator(s)."),
    "self_attention": Field(bool, "attngan: self-attention in G and D."),
    "rgb_skip": Field(bool, "attngan: multi-scale skip connections (each stage's image adds the upsampled previous one)."),
    "ema_decay": Field(float, "attngan: decay of the generator EMA used for eval/generate/export (0 = no EMA).",
                       check=in_range(0.0, 1.0, high_open=True)),
    # ---- DAMSM
    "backbone": Field(str, "damsm image encoder: cnn (trained from scratch) | inception_v3 (frozen, torchvision's "
                           "network as the official code) | keras_inception_v3 (frozen keras.applications network).",
                      choices=("cnn", "inception_v3", "keras_inception_v3")),
    "inception_weights": Field(str, "damsm: ImageNet weights of the frozen backbone: torchvision's "
                                    "inception_v3_google-*.pth (inception_v3) or the Keras no-top .h5 "
                                    "(keras_inception_v3)."),
    "backbone_batch_stats": Field(bool, "damsm inception_v3: its BatchNorms use batch statistics in training steps "
                                        "(the official pre-training runs the frozen Inception in train mode)."),
    "lr_decay_until": Field(float, "Stop the --lr_decay decays once the learning rate is at most this fraction of "
                                   "--learning_rate (0 = never stop).", check=in_range(0.0, 1.0)),
    "optimizer_reset_every": Field(int, "damsm: restart Adam (moments and bias correction) every this many steps, "
                                        "as the official code re-creates it each epoch (0 = never).", check=_nn),
    "gamma1": Field(float, "DAMSM: word-region attention sharpness.", check=_p),
    "gamma2": Field(float, "DAMSM: word relevance aggregation.", check=_p),
    "gamma3": Field(float, "DAMSM: softmax smoothing over the batch.", check=_p),
    "relevance": Field(str, "DAMSM word relevance: paper ((1/gamma2) log-sum-exp) | code (the released code's, "
                            "without 1/gamma2).", choices=("paper", "code")),
    "width": Field(int, "Channels of the first conv of the small CNN (damsm --backbone=cnn, css_classifier).", check=_p),
    "hidden_dim": Field(int, "damsm: LSTM size per direction; css_classifier: hidden size of the per-cell heads; "
                               "geneva: the turn GRU's state (and the projected instruction).",
                        check=_p),
    # ---- SRCNN
    "scale": Field(int, "srcnn: upscaling factor.", check=at_least(2)),
    "n1": Field(int, "srcnn: filters of the patch-extraction layer.", check=_p),
    "n2": Field(int, "srcnn: filters of the non-linear mapping layer.", check=_p),
    "f1": Field(int, "srcnn: patch-extraction kernel size.", check=odd_positive()),
    "f2": Field(int, "srcnn: mapping kernel size.", check=odd_positive()),
    "f3": Field(int, "srcnn: reconstruction kernel size.", check=odd_positive()),
    "residual": Field(bool, "srcnn: predict the residual over the bicubic input (the paper: the image)."),
    "init": Field(str, "srcnn: weight init, paper (N(0, 0.001)) | he.", choices=("paper", "he")),
    "downscale_method": Field(str, "srcnn: how low-res inputs are made.", choices=("bicubic", "area")),
    "hr_sampling": Field(str, "srcnn: auto | native (records at image_size) | crop (the reader's random crops).",
                         choices=("auto", "native", "crop")),
    "patch_size": Field(int, "srcnn: train on random patches of this size (0 = whole images).", check=_nn),
    "last_layer_lr_scale": Field(float, "srcnn --optimizer=sgd: the last layer's rate / the others'.", check=_p),
    # ---- sg2im
    "object_embedding_dim": Field(int, "sg2im: object and predicate embedding size.", check=_p),
    "gconv_dim": Field(int, "sg2im: object / predicate vector size of the graph convolutions.", check=_p),
    "gconv_hidden_dim": Field(int, "sg2im: hidden size of the graph convolutions' MLPs and the box net.", check=_p),
    "gconv_layers": Field(int, "sg2im: graph convolution layers.", check=_p),
    "gconv_pooling": Field(str, "sg2im: how a graph convolution pools an object's triple outputs.",
                           choices=("avg", "sum")),
    "refinement_dims": Field(str, "sg2im: channels of the cascaded refinement modules, e.g. 1024,512,256,128,64 "
                                  "(each doubles the size: image_size / 2^modules is the first)."),
    "crn_normalization": Field(str, "sg2im: normalisation in the refinement network.",
                               choices=("batch", "instance", "none")),
    "layout_noise_dim": Field(int, "sg2im: noise channels concatenated to the layout (0 = deterministic).",
                              check=_nn),
    "mask_size": Field(int, "sg2im: object mask size (a power of 2; 0 = boxes filled, no mask net).", check=_nn),
    "box_net_final_relu": Field(bool, "sg2im: the box net ends in a ReLU, as the official build_mlp "
                                      "(sg2im/model.py:76-78); off = linear box coordinates."),
    "d_img_arch": Field(str, "sg2im: image (patch) discriminator convs, C<kernel>-<channels>-<stride>,..."),
    "d_obj_arch": Field(str, "sg2im: object discriminator convs, C<kernel>-<channels>-<stride>,..."),
    "d_obj_dim": Field(int, "sg2im: the object discriminator's fully connected size.", check=_p),
    "d_normalization": Field(str, "sg2im: normalisation in both discriminators.", choices=("batch", "none")),
    "crop_size": Field(int, "sg2im: object crops' size for the object discriminator.", check=_p),
    "box_loss": Field(str, "sg2im: box regression loss, mse (the official code) | l1 (the paper).",
                      choices=("mse", "l1")),
    "box_loss_weight": Field(float, "sg2im: weight of the box loss.", check=_nn),
    "mask_loss_weight": Field(float, "sg2im: weight of the mask BCE loss.", check=_nn),
    "pixel_loss_weight": Field(float, "sg2im: weight of the L1 pixel loss.", check=_nn),
    "gan_loss_weight": Field(float, "sg2im: weight of the generator's GAN losses (times --d_img_weight / "
                                    "--d_obj_weight).", check=_nn),
    "d_img_weight": Field(float, "sg2im: image discriminator weight (0 = no image discriminator).", check=_nn),
    "d_obj_weight": Field(float, "sg2im: object discriminator weight (0 = no object discriminator).", check=_nn),
    "ac_loss_weight": Field(float, "sg2im: weight of the object discriminator's auxiliary classification in G's loss.",
                            check=_nn),
    "triple_dropout": Field(float, "sg2im: in training, each place triple becomes __in_image__ and each relation "
                                   "between two objects is dropped with this probability (partial graphs, as people "
                                   "write them, stay in the training distribution); 0 = complete graphs.",
                            check=in_range(0.0, 1.0, high_open=True)),
    "eval_graph": Field(str, "sg2im --mode=eval: the graphs images are drawn from: true | shuffled (another held-out "
                             "scene >= 2 cells apart: the text-ignoring reference) | empty (the image node only).",
                        choices=("true", "shuffled", "empty")),
    # ---- geneva
    "d_learning_rate": Field(float, "geneva: Adam learning rate of the discriminator.", check=_p),
    "rnn_learning_rate": Field(float, "geneva: Adam learning rate of the turn GRU (over the instructions).", check=_p),
    "sentence_learning_rate": Field(float, "geneva: Adam learning rate of the instruction encoder (word embeddings + "
                                           "bidirectional GRU).", check=_p),
    "word_dim": Field(int, "geneva: word embedding size (the paper's 300-d GloVe; learned here).", check=_p),
    "sentence_dim": Field(int, "geneva: instruction encoding size (bidirectional GRU, half per direction).", check=_p),
    "generator_dims": Field(str, "geneva: generator channels: the 4x4 start, then one per 2x residual up block "
                                 "(log2(image_size / 4) blocks), e.g. 1024,1024,512,256,128,64."),
    "image_encoder_dims": Field(str, "geneva: channels of the previous-image encoder's 4x4 stride-2 convolutions; its "
                                     "map joins the generator where that reaches its size."),
    "discriminator_dims": Field(str, "geneva: channels of the discriminator's residual down blocks (each halves the "
                                     "size until 4x4), e.g. 64,128,256,512,1024,1024."),
    "d_fusion_block": Field(int, "geneva: discriminator blocks before the previous image's features are subtracted.",
                            check=_p),
    "aux_weight": Field(float, "geneva: weight of the discriminator's object detector (multi-label BCE over the CSS "
                               "object types in the image), in D's and G's losses.", check=_nn),
    "wrong_fake_ratio": Field(float, "geneva: share of the mismatched-image term (vs the generated one) in D's hinge "
                                     "loss.", check=in_range(0.0, 1.0)),
    "text_grads_from": Field(str, "geneva: which loss trains the instruction encoders and turn GRU: discriminator "
                                  "(the official code) | both (also the generator's losses through its condition).",
                             choices=("discriminator", "both")),
    "eval_classifier": Field(str, "geneva --mode=eval: workdir of a trained --model=css_classifier that reads the "
                                  "drawn canvases for the per-turn object metrics ('' or missing: skipped)."),
    "baseline_workdir": Field(str, "geneva --mode=eval: a trained --model=stackgan_tirg run, applied turn by turn "
                                   "(each output the next source) as the baseline ('' or missing: skipped)."),
    # ---- CSS classifier
    "rescale_prob": Field(float, "css_classifier: fraction of training batches shrunk to a random size and back.",
                          check=in_range(0.0, 1.0)),
    "rescale_min_size": Field(int, "css_classifier: the smallest size of those rescalings.", check=_p),
}

# Every model has these (the Trainer's settings).
RUN_KEYS = ("dataset", "batch_size", "num_iters", "log_every", "eval_every", "ckpt_every", "seed", "steps_per_loop",
            "jit_compile")
RUN_DEFAULTS = {"seed": 0, "steps_per_loop": 50, "jit_compile": False}


def fields_of(*names: str, **own: Field) -> dict[str, Field]:
    """A model's schema fields: ``RUN_KEYS + names`` from FIELDS, and ``own`` fields where the model narrows one
    (see :func:`restricted`, :func:`checked`)."""
    return {**{name: FIELDS[name] for name in (*RUN_KEYS, *names)}, **own}


def restricted(name: str, *choices: str) -> Field:
    """Field ``name`` accepting only ``choices`` (e.g. a model that reads one dataset)."""
    return dataclasses.replace(FIELDS[name], choices=choices)


def checked(name: str, check: Check) -> Field:
    """Field ``name`` with a model's own condition on it (e.g. batches of pairs)."""
    return dataclasses.replace(FIELDS[name], check=check)
