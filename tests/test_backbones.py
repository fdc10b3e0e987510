"Backbone builders: tiny forwards, save → reload round trips (folder, fp16 variant, single file, HF cache), meta counts, missing/corrupt weights."
import json
from pathlib import Path
import pytest, torch
from safetensors.torch import save_file
from rsworkbench.core import RSWError
from rsworkbench.models.backbones import (build_unet, build_vae, build_taesd, build_scheduler, count_params, unet_inputs,
                                          weights_status, locate_weights, unet_config, BACKBONES)


@pytest.fixture(autouse=True)
def empty_env(tmp_path, monkeypatch):
    "Point RSW_WEIGHTS and the HF cache at empty folders so the machine's own files never change a result."
    monkeypatch.setenv('RSW_WEIGHTS', str(tmp_path/'weights'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path/'hf'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def _out(unet, name='tiny'):
    with torch.no_grad(): return unet(**unet_inputs(name, latent_size=8)).sample


def test_tiny_unet_forward():
    unet = build_unet('tiny')
    x, ehs = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with torch.no_grad(): y = unet(x, torch.tensor([10]), encoder_hidden_states=ehs).sample
    assert y.shape == (1, 4, 8, 8) and torch.isfinite(y).all()


def test_tiny_sdxl_forward_needs_added_cond():
    unet = build_unet('tiny-sdxl')
    kw = unet_inputs('tiny-sdxl', batch_size=2, latent_size=8)
    assert kw['added_cond_kwargs']['time_ids'].shape == (2, 6)
    assert _out(unet, 'tiny-sdxl').shape == (1, 4, 8, 8)
    with pytest.raises((ValueError, TypeError)): unet(kw['sample'], 1, encoder_hidden_states=kw['encoder_hidden_states'])


def test_tiny_vae_and_taesd_shapes():
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    vae, taesd = build_vae('tiny'), build_taesd('tiny')
    with torch.no_grad():
        z = vae.encode(img).latent_dist.mode()
        assert z.shape == (2, 4, 8, 8) and vae.decode(z).sample.shape == img.shape
        zt = taesd.encode(img).latents
        assert zt.shape == (2, 4, 8, 8) and taesd.decode(zt).sample.shape == img.shape


@pytest.mark.parametrize('name', ['tiny', 'tiny-sdxl'])
def test_unet_round_trip(tmp_path, name):
    unet = build_unet(name, seed=3)
    unet.save_pretrained(tmp_path/name/'unet')
    back = build_unet(name, weights_dir=tmp_path)
    assert torch.equal(_out(unet, name), _out(back, name))
    assert not torch.equal(_out(build_unet(name, seed=4), name), _out(back, name)) # the seed matters, so the load did


def test_vae_taesd_round_trip(tmp_path):
    vae, taesd, img = build_vae('tiny', seed=1), build_taesd('tiny', seed=1), torch.rand(1, 3, 32, 32)
    vae.save_pretrained(tmp_path/'tiny'/'vae'); taesd.save_pretrained(tmp_path/'tiny'/'taesd')
    with torch.no_grad():
        assert torch.equal(build_vae('tiny', weights_dir=tmp_path).encode(img).latent_dist.mean, vae.encode(img).latent_dist.mean)
        assert torch.equal(build_taesd('tiny', weights_dir=tmp_path).encode(img).latents, taesd.encode(img).latents)


def test_fp16_variant_only(tmp_path):
    unet = build_unet('tiny', seed=2)
    unet.to(torch.float16).save_pretrained(tmp_path/'tiny'/'unet', variant='fp16')
    assert not (tmp_path/'tiny'/'unet'/'diffusion_pytorch_model.safetensors').exists()
    back = build_unet('tiny', weights_dir=tmp_path, dtype='fp16')
    assert back.dtype == torch.float16
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), back.state_dict().values()))


def test_single_file_offline(tmp_path):
    "`<weights_dir>/<name>.safetensors` goes through diffusers `from_single_file` with our config, offline."
    unet = build_unet('tiny', seed=7)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(tmp_path/'tiny.safetensors'))
    assert locate_weights('tiny', 'unet', tmp_path)['source'] == 'single-file'
    assert torch.equal(_out(build_unet('tiny', weights_dir=tmp_path)), _out(unet))


def test_hf_cache_is_used(tmp_path, monkeypatch):
    "A snapshot in the HF cache layout is found and loaded with local_files_only."
    cache = tmp_path/'hf2'; snap = cache/'models--stabilityai--sd-turbo'/'snapshots'/('0' * 40)
    unet = build_unet('tiny', seed=9) # stands in for the real UNet: the cached folder's own config.json wins
    unet.save_pretrained(snap/'unet')
    (cache/'models--stabilityai--sd-turbo'/'refs').mkdir(parents=True)
    (cache/'models--stabilityai--sd-turbo'/'refs'/'main').write_text('0' * 40)
    monkeypatch.setenv('HF_HUB_CACHE', str(cache))
    assert locate_weights('sd-turbo', 'unet', tmp_path/'nothing') == dict(source='hf-cache', path=snap/'unet')
    assert torch.equal(_out(build_unet('sd-turbo', weights_dir=tmp_path/'nothing')), _out(unet))
    assert {(r['name'], r['component']): r['found'] for r in weights_status(tmp_path/'nothing')}[('sd-turbo', 'unet')]


def test_meta_param_counts():
    assert count_params(build_unet('sd21-base', device='meta')) == 865_910_724
    assert count_params(build_unet('sd-turbo', device='meta')) == 865_910_724
    assert count_params(build_unet('sdxl', device='meta')) == 2_567_463_684
    assert count_params(build_vae('sdxl', device='meta')) == 83_653_863
    assert count_params(build_taesd('sd21-base', device='meta')) == 2_445_063
    m = build_unet('sd21-base', device='meta', dtype='fp16')
    assert m.device.type == 'meta' and m.dtype == torch.float16


def test_missing_weights_message(tmp_path):
    for build, name, expected in [(build_unet, 'sd21-base', 'sd21-base/unet/diffusion_pytorch_model.safetensors'),
                                  (build_vae, 'sdxl', 'sdxl/vae/config.json'),
                                  (build_taesd, 'sd-turbo', 'taesd/diffusion_pytorch_model.safetensors')]:
        with pytest.raises(RSWError) as e: build(name)
        msg = str(e.value)
        assert str(tmp_path/'weights'/expected) in msg and f"Put them in {tmp_path/'weights'}" in msg
        assert 'RSW_WEIGHTS' in msg and 'allow_download=True' in msg
    with pytest.raises(RSWError, match=str(tmp_path/'elsewhere')): build_unet('sdxl', weights_dir=tmp_path/'elsewhere')


def test_corrupt_weights(tmp_path):
    d = tmp_path/'sd21-base'/'unet'; d.mkdir(parents=True)
    (d/'config.json').write_text(json.dumps(unet_config('tiny')))
    (d/'diffusion_pytorch_model.safetensors').write_bytes(b'not a safetensors file')
    with pytest.raises(RSWError, match='could not load the unet'): build_unet('sd21-base', weights_dir=tmp_path)


def test_weights_status(tmp_path):
    rows = weights_status()
    assert {(r['name'], r['component']) for r in rows} == {(n, c) for n in ('sd21-base', 'sd-turbo', 'sdxl')
                                                           for c in ('unet', 'vae', 'text_encoders')} | {('taesd', 'vae'), ('taesdxl', 'vae')}
    assert not any(r['found'] for r in rows)
    assert all(r['path'].startswith(str(tmp_path/'weights')) for r in rows)
    build_vae('tiny').save_pretrained(tmp_path/'weights'/'sd21-base'/'vae')
    found = {(r['name'], r['component']): r for r in weights_status()}
    assert found[('sd21-base', 'vae')]['found'] and found[('sd21-base', 'vae')]['source'] == 'dir'
    assert not found[('sd21-base', 'unet')]['found']
    assert not found[('sd21-base', 'text_encoders')]['found'] and 'text_encoder' in found[('sd21-base', 'text_encoders')]['path']
    from rsworkbench.models.backbones import tiny_text_encoders
    tiny_text_encoders('sd').save_pretrained(tmp_path/'weights'/'sd21-base')
    found = {(r['name'], r['component']): r for r in weights_status()}
    assert found[('sd21-base', 'text_encoders')]['found'] and not found[('sdxl', 'text_encoders')]['found']


@pytest.mark.parametrize('kind', ['ddim', 'ddpm', 'euler', 'euler_a', 'unipc', 'dpm'])
def test_schedulers_step(kind):
    s = build_scheduler('tiny', kind)
    s.set_timesteps(2)
    x = torch.randn(1, 4, 8, 8) * s.init_noise_sigma
    for t in s.timesteps:
        x = s.step(torch.zeros_like(x), t, s.scale_model_input(x, t)).prev_sample
    assert torch.isfinite(x).all() and len(s.timesteps) == 2


@pytest.mark.gpu
def test_tiny_cuda_fp16():
    unet = build_unet('tiny-sdxl', device='cuda', dtype='fp16')
    with torch.no_grad(): y = unet(**unet_inputs('tiny-sdxl', device='cuda', dtype=torch.float16)).sample
    assert y.dtype == torch.float16 and torch.isfinite(y).all()


@pytest.mark.slow
@pytest.mark.parametrize('name', ['sd21-base', 'sd-turbo', 'sdxl'])
def test_real_weights_when_present(name, monkeypatch):
    "With the user's real weights (RSW_WEIGHTS or HF cache), load the UNet and check its size; skipped when absent."
    monkeypatch.undo() # the real environment
    if locate_weights(name, 'unet')['source'] is None: pytest.skip(f'no local {name} UNet')
    unet = build_unet(name, dtype='bf16')
    assert count_params(unet) == count_params(build_unet(name, device='meta'))


# ---- text encoders (issue #28: the prompt path) ----

def test_clip_tokenizer_matches_openai_clip():
    "The offline-built HF CLIPTokenizer gives the ids of openai-clip's own SimpleTokenizer (49,408 entries)."
    from clip.simple_tokenizer import SimpleTokenizer
    from rsworkbench.models.backbones import clip_tokenizer
    ref, tok = SimpleTokenizer(), clip_tokenizer('<|endoftext|>')
    for s in ["A high-resolution satellite image of an airport, with runways; sharp edges & fine details!!",
              "Dense residential blocks, 0.5 m/px — cloudy (GF-2) scene's roads"]:
        assert tok(s).input_ids == [49406] + ref.encode(s) + [49407]
    assert len(tok) == 49408 and clip_tokenizer('!').pad_token_id == 0


def test_tiny_text_encoders_shapes_and_prompt_reaches_output():
    from rsworkbench.models.backbones import tiny_text_encoders, TINY_UNET, TINY_SDXL_UNET
    sd, xl = tiny_text_encoders('sd'), tiny_text_encoders('sdxl')
    h, p = sd.encode(['a harbour', 'a forest'])
    assert h.shape == (2, 77, TINY_UNET['cross_attention_dim']) and p is None
    assert not torch.allclose(h[0], h[1])
    h, p = xl.encode(['a harbour', ''])
    assert h.shape == (2, 77, TINY_SDXL_UNET['cross_attention_dim']) and p.shape == (2, 32)
    assert (xl.cross_attention_dim, xl.pooled_dim) == (64, 32)
    assert not torch.allclose(p[0], p[1])


def test_text_encoders_save_load_and_missing(tmp_path):
    from rsworkbench.models.backbones import tiny_text_encoders, build_text_encoders, has_text_encoders
    xl = tiny_text_encoders('sdxl', seed=3)
    assert not has_text_encoders('sdxl')
    with pytest.raises(RSWError, match='text_encoder_2'): build_text_encoders('sdxl')
    with pytest.raises(RSWError, match='no text encoder'): build_text_encoders('taesd')
    xl.save_pretrained(tmp_path/'w'/'tiny-sdxl')
    assert (tmp_path/'w'/'tiny-sdxl'/'tokenizer_2'/'merges.txt').exists()
    back = build_text_encoders('tiny-sdxl', weights_dir=tmp_path/'w')
    for a, b in zip(back.encode(['roads']), xl.encode(['roads'])): assert torch.equal(a, b)
    assert back.tokenizer.pad_token == '<|endoftext|>' and back.tokenizer_2.pad_token == '!'


def test_text_encoder_configs_are_the_published_sizes():
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from rsworkbench.models.backbones import SD2_TEXT_ENCODER, SDXL_TEXT_ENCODER, SDXL_TEXT_ENCODER_2
    with torch.device('meta'):
        n = [count_params(c(CLIPTextConfig(**cfg))) for c, cfg in [(CLIPTextModel, SD2_TEXT_ENCODER),
             (CLIPTextModel, SDXL_TEXT_ENCODER), (CLIPTextModelWithProjection, SDXL_TEXT_ENCODER_2)]]
    assert n == [340_387_840, 123_060_480, 694_659_840]


# ---- real-layout weights folder (issue #28: full-size forward passes) ----

def test_materialize_and_check_small_components(tmp_path):
    "materialize_weights writes the loaders' layout (idempotently); check_weights_folder reads headers and names what is wrong."
    from rsworkbench.models.backbones import materialize_weights, check_weights_folder, build_taesd
    rows = materialize_weights(tmp_path, names=('taesd', 'sd21-base'), components=('vae', 'scheduler', 'tokenizer', 'model_index'))
    assert [r['written'] for r in rows] == [True] * 5
    assert [r['written'] for r in materialize_weights(tmp_path, names=('taesd',))] == [False]
    assert locate_weights('sd21-base', 'taesd', tmp_path)['source'] == 'dir'
    assert count_params(build_taesd('sd21-base', weights_dir=tmp_path)) == 2_445_063
    idx = json.loads((tmp_path/'sd21-base'/'model_index.json').read_text())
    assert idx['_class_name'] == 'StableDiffusionPipeline' and idx['text_encoder'] == ['transformers', 'CLIPTextModel']
    chk = {(r['name'], r['component']): r for r in check_weights_folder(tmp_path)}
    assert chk['taesd', 'vae']['layout_ok'] and chk['taesd', 'vae']['params'] == 2_445_063
    assert chk['sd21-base', 'vae']['params'] == chk['sd21-base', 'vae']['expected_params'] == 83_653_863
    assert not chk['sd21-base', 'unet']['found'] and chk['sdxl', 'unet']['expected_params'] == 2_567_463_684
    assert chk['sd21-base', 'tokenizer']['layout_ok'] and not chk['sd21-base', 'text_encoder']['found']


def test_check_weights_folder_flags_a_wrong_model(tmp_path):
    from rsworkbench.models.backbones import check_weights_folder
    build_unet('tiny').save_pretrained(tmp_path/'sd21-base'/'unet')            # a wrong UNet in the right place
    (tmp_path/'sd21-base'/'model_index.json').write_text('{}')
    r = {x['component']: x for x in check_weights_folder(tmp_path/'sd21-base')}
    assert r['unet']['found'] and not r['unet']['layout_ok']
    assert any('block_out_channels' in p for p in r['unet']['problems'])
    assert any('missing tensors' in p for p in r['unet']['problems'])
    assert any('does not list unet' in p for p in r['model_index']['problems'])


def test_check_accepts_what_the_loaders_accept(tmp_path):
    "A Hub-style VAE with the old attention names (query/key/value/proj_attn), in a backbone folder holding only vae/, checks clean and loads; a wrong shape is named."
    from safetensors.torch import load_file
    from rsworkbench.models.backbones import materialize_weights, check_weights_folder
    materialize_weights(tmp_path/'new', 'sd21-base', components=('vae',))
    sd = load_file(tmp_path/'new'/'sd21-base'/'vae'/'diffusion_pytorch_model.fp16.safetensors')
    ren = {'.to_q.': '.query.', '.to_k.': '.key.', '.to_v.': '.value.', '.to_out.0.': '.proj_attn.'}
    old = {}
    for k, v in sd.items():
        for a, b in ren.items(): k = k.replace(a, b) if 'attentions' in k else k
        old[k] = v
    d = tmp_path/'old'/'sd21-base'/'vae'; d.mkdir(parents=True)
    (d/'config.json').write_text((tmp_path/'new'/'sd21-base'/'vae'/'config.json').read_text())
    save_file(old, str(d/'diffusion_pytorch_model.safetensors'))
    assert 'encoder.mid_block.attentions.0.query.weight' in old
    r = {x['component']: x for x in check_weights_folder(tmp_path/'old'/'sd21-base')}   # one backbone folder, vae/ only
    assert r['vae']['layout_ok'] and r['vae']['params'] == 83_653_863, r['vae']['problems']
    assert not r['unet']['found']
    vae = build_vae('sd21-base', weights_dir=tmp_path/'old')                               # diffusers converts the old names
    assert torch.equal(vae.encoder.mid_block.attentions[0].to_q.weight.half(), sd['encoder.mid_block.attentions.0.to_q.weight'])
    old['encoder.conv_in.weight'] = old['encoder.conv_in.weight'][:64]
    save_file(old, str(d/'diffusion_pytorch_model.safetensors'))
    r = {x['component']: x for x in check_weights_folder(tmp_path/'old'/'sd21-base')}
    assert not r['vae']['layout_ok'] and any('wrong shapes' in p and 'encoder.conv_in.weight' in p for p in r['vae']['problems'])
