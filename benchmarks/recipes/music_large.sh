#!/usr/bin/env bash
# Large music-identification reference set: full-length free game soundtracks from Debian (no Wesnoth)
#   -> $OUT/music_large/<package>/<package>_<track>.wav  (mono, $SR Hz, 16-bit) and $OUT/music_large/manifest.tsv
# Built on Debian 12 (bookworm): 34 packages, 537 tracks >= 30 s, 1,727 min (28.8 h); see README.md here.
# Packages (licence of the music as stated in /usr/share/doc/PKG/copyright; several packages license per file):
#   0ad-data (CC-BY-SA-3.0)  ufoai-music (GPL-2+)  nexuiz-music (GPL-2+)  asc-music (GPL-2+)
#   colobot-common-sounds (GPL-3+)  drascula-music (Drascula-License: freely redistributable, Debian main)
#   extremetuxracer-data (GPL-2+)  fillets-ng-data (GPL-2+)  flare-game (CC-BY-SA-3.0+)  freeciv-data (GPL-2+)
#   freedroidrpg-data (GPL-2+)  fretsonfire-songs-muldjord (CC-BY-SA-3.0)  fretsonfire-songs-sectoid (GPL-2+)
#   frozen-bubble-data (GPL-2)  funnyboat (GPL-2)  hedgewars-data (GPL-2)  hyperrogue-music (CC-BY-SA-3.0)
#   lincity-ng-data (GPL-2+)  lordsawar-data (GPL-3+)  lugaru-data (CC-BY-SA-3.0)  megaglest-data (CC-BY-SA-3.0)
#   naev-data (GPL-2+ / GPL-3 or CC-BY-3.0, per file)  openclonk-data (ISC)  pathological (GPL-2+)
#   pink-pony-data (CC-BY-SA-3.0)  planetblupi-music-ogg (GPL-3+)  redeclipse-data (CC-BY-SA-3.0)
#   scorched3d-data (GPL-2+)  singularity-music (CC-BY-SA-3.0)  supertux-data (GPL-2+)
#   supertuxkart-data (CC-BY-SA-3.0/4.0, per file)  warzone2100-music (GPL-2+)  widelands-data (GPL-2+ / CC-BY-SA-3.0)
#   xmoto-data (GPL-2+)
# Needs: sox (apt-get install -y --no-install-recommends sox libsox-fmt-all), unzip, sha256sum, and for the
# warzone2100 .opus files a python3 with numpy + soundfile (libsndfile >= 1.0.29): PY=.venv/bin/python
# Run:
#   DOWNLOAD=1 ROOT=/data/music_large_root OUT=/data bash benchmarks/recipes/music_large.sh
#       apt-get download (no root needed) into $DEBS (default $ROOT.debs, about 6 GB) and dpkg-deb -x into $ROOT
#       (about 7 GB unpacked: 0ad-data alone is 3.3 GB, it ships its music inside public.zip)
#   ROOT= OUT=/data bash benchmarks/recipes/music_large.sh      # packages installed with apt-get install
# Re-runnable: tracks already converted are skipped; the manifest is rewritten from what is there.
# Deduplication: a source file whose sha256 was already taken is skipped (same file in two packages), and the
# near-identical variants the packages ship are excluded by name (supertuxkart *_fast, warzone2100 *_enhanced,
# hedgewars olympics_sd, redeclipse theme_chip, ufoai dynamictest); tracks < MIN_S s and ambience loops / sound
# effects are not taken. Fretsonfire songs ship as stems (song.ogg + guitar.ogg [+ rhythm.ogg]): they are mixed
# into one track. Check a finished set for remaining shared audio with benchmarks/recipes/find_duplicates.py.
set -euo pipefail
shopt -s nullglob globstar
OUT=${OUT:-./datasets}; SR=${SR:-16000}; ROOT=${ROOT:-}; PY=${PY:-python3}; MIN_S=${MIN_S:-30}
DOWNLOAD=${DOWNLOAD:-0}; DEBS=${DEBS:-${ROOT:+$ROOT.debs}}
JOBS=${JOBS:-$(nproc)}   # conversions run in parallel
D="$OUT/music_large"; SRC=${SRC:-$OUT/music_large_src}   # SRC: music unpacked from the zip archives (pk3) some packages ship
PACKAGES=(0ad-data ufoai-music nexuiz-music asc-music colobot-common-sounds drascula-music extremetuxracer-data
  fillets-ng-data flare-game freeciv-data freedroidrpg-data fretsonfire-songs-muldjord fretsonfire-songs-sectoid
  frozen-bubble-data funnyboat hedgewars-data hyperrogue-music lincity-ng-data lordsawar-data lugaru-data
  megaglest-data naev-data openclonk-data pathological pink-pony-data planetblupi-music-ogg redeclipse-data
  scorched3d-data singularity-music supertux-data supertuxkart-data warzone2100-music widelands-data xmoto-data)

# ---- helpers (as in ../shared/recipes/_common.sh)
command -v sox >/dev/null || { echo "need sox: apt-get install -y sox libsox-fmt-all" >&2; exit 1; }
slug() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9._-]+/_/g; s/^_+|_+$//g'; }
dur() { soxi -D "$1" 2>/dev/null || echo 0; }
conv() {  # conv SRC DST.wav  -> mono, $SR Hz, 16-bit (written to a .part file first, so a kill leaves no half track)
  mkdir -p "$(dirname "$2")"
  case "${1,,}" in
    *.opus) "$PY" -c 'import sys,soundfile as sf; x,sr=sf.read(sys.argv[1]); sf.write(sys.argv[2],x,sr,subtype="PCM_16")' "$1" "$2.tmp.wav"
            sox -V1 -G "$2.tmp.wav" -t wav -c 1 -r "$SR" -b 16 "$2.part"; rm -f "$2.tmp.wav" ;;
    *)      sox -V1 -G "$1" -t wav -c 1 -r "$SR" -b 16 "$2.part" ;;
  esac
  mv "$2.part" "$2"
}
src_dur() {  # duration of a source file; opus through python (the sox build may lack it)
  case "${1,,}" in
    *.opus) "$PY" -c 'import sys,soundfile as sf; print(sf.info(sys.argv[1]).duration)' "$1" 2>/dev/null || echo 0 ;;
    *)      dur "$1" ;;
  esac
}

# ---- optional download + unpack without root
if [[ "$DOWNLOAD" == 1 ]]; then
  [[ -n "$ROOT" ]] || { echo "DOWNLOAD=1 needs ROOT=<folder to unpack into>" >&2; exit 1; }
  mkdir -p "$DEBS" "$ROOT"
  for p in "${PACKAGES[@]}"; do
    debs=("$DEBS/${p}"_*.deb)
    if (( ${#debs[@]} == 0 )); then (cd "$DEBS" && apt-get download "$p"); debs=("$DEBS/${p}"_*.deb); fi
    [[ -e "$ROOT/.unpacked-$p" ]] || { dpkg-deb -x "${debs[0]}" "$ROOT" && touch "$ROOT/.unpacked-$p"; }
  done
fi
R="${ROOT%/}"

# ---- music inside zip archives -> $SRC/<package>/
unzip_music() {  # unzip_music PKG ZIP PATTERN
  local z="$R/$2"
  [[ -e "$SRC/$1/.done" ]] && return 0
  [[ -e "$z" ]] || { echo "missing $z ($1 not installed/unpacked?)" >&2; return 0; }
  mkdir -p "$SRC/$1"; unzip -qo "$z" "$3" -d "$SRC/$1"; touch "$SRC/$1/.done"
}
unzip_music 0ad-data usr/share/games/0ad/mods/public/public.zip 'audio/music/*.ogg'
unzip_music ufoai-music usr/share/games/ufoai/base/0music.pk3 'music/*.ogg'
unzip_music nexuiz-music usr/share/games/nexuiz/data/music.pk3 'sound/cdtracks/*.ogg'

# ---- licences (the music's, from each package's copyright file)
declare -A LIC=(
  [0ad-data]=CC-BY-SA-3.0 [ufoai-music]=GPL-2+ [nexuiz-music]=GPL-2+ [asc-music]=GPL-2+
  [colobot-common-sounds]=GPL-3+ [drascula-music]=Drascula-License [extremetuxracer-data]=GPL-2+
  [fillets-ng-data]=GPL-2+ [flare-game]=CC-BY-SA-3.0+ [freeciv-data]=GPL-2+ [freedroidrpg-data]=GPL-2+
  [fretsonfire-songs-muldjord]=CC-BY-SA-3.0 [fretsonfire-songs-sectoid]=GPL-2+ [frozen-bubble-data]=GPL-2
  [funnyboat]=GPL-2 [hedgewars-data]=GPL-2 [hyperrogue-music]=CC-BY-SA-3.0 [lincity-ng-data]=GPL-2+
  [lordsawar-data]=GPL-3+ [lugaru-data]=CC-BY-SA-3.0 [megaglest-data]=CC-BY-SA-3.0
  [naev-data]="GPL-2+|GPL-3 or CC-BY-3.0 (per file)" [openclonk-data]=ISC [pathological]=GPL-2+
  [pink-pony-data]=CC-BY-SA-3.0 [planetblupi-music-ogg]=GPL-3+ [redeclipse-data]=CC-BY-SA-3.0
  [scorched3d-data]=GPL-2+ [singularity-music]=CC-BY-SA-3.0 [supertux-data]=GPL-2+
  [supertuxkart-data]="CC-BY-SA-3.0|CC-BY-SA-4.0 (per file)" [warzone2100-music]=GPL-2+
  [widelands-data]="GPL-2+|CC-BY-SA-3.0 (per file)" [xmoto-data]=GPL-2+
)
EXCLUDE='(_fast|_f|_enhanced|olympics_sd|theme_chip|dynamictest[^/]*|wind_ambient)\.[a-z0-9]+$'

# Tracks that share audio with another track of the set (same recording re-encoded, a loop reused in a longer
# piece...): found with find_duplicates.py (5 excerpts of 10 s per track, pairs with a fingerprint score >= 45;
# unrelated tracks score <= 41 there). One track of each pair is dropped; the one kept is named after '='.
DROP=" flare-game_battle_theme=supertux-data_misc_battle_theme colobot-common-sounds_music008=colobot-common-sounds_infinite
 colobot-common-sounds_music009=colobot-common-sounds_music007 colobot-common-sounds_humanitarian=colobot-common-sounds_hv2
 freedroidrpg-data_techbattle=freedroidrpg-data_ambientbattle freedroidrpg-data_hellfortresstwo=freedroidrpg-data_hellfortressentrance
 drascula-music_track30=drascula-music_track1 naev-data_ambient2_5=naev-data_ambient2
 warzone2100-music_albums_legacy_soundtrack_track15=warzone2100-music_albums_legacy_soundtrack_track10
 warzone2100-music_albums_legacy_soundtrack_track9=warzone2100-music_albums_legacy_soundtrack_track8
 warzone2100-music_albums_aftermath_soundtrack_track22=warzone2100-music_albums_aftermath_soundtrack_track18
 warzone2100-music_albums_aftermath_soundtrack_track27=warzone2100-music_albums_aftermath_soundtrack_track18
 planetblupi-music-ogg_music001=planetblupi-music-ogg_music000 planetblupi-music-ogg_music002=planetblupi-music-ogg_music000
 planetblupi-music-ogg_music003=planetblupi-music-ogg_music000 supertux-data_forest_shallow-green=supertux-data_forest_call_of_the_winding_path
 scorched3d-data_mix3_loop2=scorched3d-data_mix3_loop1 ufoai-music_marineurbanwarfare=ufoai-music_marinebacktheattack
 ufoai-music_marinestrikingintotheunknown=ufoai-music_marineindustrial "
declare -A SEEN=()   # sha256 of a taken source -> its track
ROWS=()              # path, package, sha256, source of every track taken
n=0; dup=0; short=0; dropped=0
add() {  # add PKG BASEDIR FILE [MIX_FILES...]: track name = path below BASEDIR (subfolders joined with _)
  local pkg=$1 base=$2 f=$3; shift 3
  [[ "$f" =~ $EXCLUDE ]] && return 0
  local rel=${f#"$base"/}; rel=${rel%.*}
  [[ "$(basename "$f")" == song.ogg ]] && rel=$(dirname "$rel")   # fretsonfire: the song's folder names it
  local name; name="$(slug "$pkg")_$(slug "${rel//\//_}")"
  local dst="$D/$pkg/$name.wav"
  if [[ "$DROP" =~ [[:space:]]"$name"= ]]; then rm -f "$dst"; dropped=$((dropped+1)); return 0; fi
  local h; h=$(sha256sum "$f" | cut -c1-64)
  if [[ -n "${SEEN[$h]:-}" && "${SEEN[$h]}" != "$dst" ]]; then dup=$((dup+1)); echo "duplicate: $f = ${SEEN[$h]}" >&2; return 0; fi
  SEEN[$h]=$dst
  if [[ ! -e "$dst" ]]; then
    local d; d=$(src_dur "$f")
    awk -v d="$d" -v m="$MIN_S" 'BEGIN{exit !(d>=m)}' || { short=$((short+1)); return 0; }
    while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
    if (( $# )); then   # stems: mix them (sox -m), the song file first
      mkdir -p "$(dirname "$dst")"
      { sox -V1 -G -m "$f" "$@" -t wav -c 1 -r "$SR" -b 16 "$dst.part" 2>/dev/null && mv "$dst.part" "$dst" || conv "$f" "$dst"; } &
    else
      conv "$f" "$dst" &
    fi
  fi
  local source=${f#"$R"/}; source=${source#"$SRC"/}
  ROWS+=("$pkg/$name.wav"$'\t'"$pkg"$'\t'"$h"$'\t'"$source")
}
take() {  # take PKG BASEDIR GLOB...  (globs relative to BASEDIR)
  local pkg=$1 base=$2 g f; shift 2
  for g in "$@"; do for f in "$base"/$g; do [[ -f "$f" ]] && add "$pkg" "$base" "$f"; done; done
}

mkdir -p "$D"; MANIFEST="$D/manifest.tsv"
G="$R/usr/share/games"
take 0ad-data "$SRC/0ad-data/audio/music" '*.ogg'
take ufoai-music "$SRC/ufoai-music/music" '*.ogg'
take nexuiz-music "$SRC/nexuiz-music/sound/cdtracks" '*.ogg'
take asc-music "$G/asc/music" '*.mp3' '*.ogg'
take colobot-common-sounds "$G/colobot/music" '*.ogg'
take drascula-music "$R/usr/share/scummvm/drascula/audio" '*.ogg'
take extremetuxracer-data "$G/etr/music" '*.ogg'
take fillets-ng-data "$G/fillets-ng/music" '*.ogg'
take flare-game "$G/flare/mods/fantasycore/music" '*.ogg'
take freeciv-data "$G/freeciv" 'stdmusic/*.ogg'
take freedroidrpg-data "$R/usr/share/freedroidrpg/data/sound/music" '*.ogg'
for p in muldjord sectoid; do
  for s in "$G/fretsonfire/data/songs/$p"/*/song.ogg; do
    stems=(); for x in guitar rhythm; do [[ -e "$(dirname "$s")/$x.ogg" ]] && stems+=("$(dirname "$s")/$x.ogg"); done
    add "fretsonfire-songs-$p" "$G/fretsonfire/data/songs/$p" "$s" "${stems[@]}"
  done
done
take frozen-bubble-data "$G/frozen-bubble/snd" '*zik*.ogg'
take funnyboat "$G/funnyboat/data" '*.ogg'
take hedgewars-data "$G/hedgewars/Data/Music" '*.ogg'
take hyperrogue-music "$R/usr/share/hyperrogue/music" '*.ogg'
take lincity-ng-data "$G/lincity-ng/music" '**/*.ogg'
take lordsawar-data "$G/lordsawar/music" '*.ogg'
take lugaru-data "$G/lugaru/Sounds" 'Music*.ogg'
take megaglest-data "$G/megaglest" 'data/core/menu/music/*.ogg' 'techs/*/factions/*/music/*.ogg'
take naev-data "$R/usr/share/naev/dat/snd/music" '*.ogg'
take openclonk-data "$G/openclonk/Music.ocg" '*.ogg'
take pathological "$G/pathological/music" '*.ogg'
take pink-pony-data "$G/pink-pony/music" '*.mp3'
take planetblupi-music-ogg "$R/usr/share/planetblupi/music" '*.ogg'
take redeclipse-data "$G/redeclipse/data" 'sounds/music/*.ogg' 'sounds/theme.ogg' 'sounds/original.ogg' 'maps/*.ogg'
take scorched3d-data "$G/scorched3d/data/globalmods/none/data/music" '*.ogg'
take singularity-music "$G/singularity/music" '**/*.ogg'
take supertux-data "$G/supertux2/music" '**/*.ogg'
take supertuxkart-data "$G/supertuxkart/data/music" '*.ogg'
take warzone2100-music "$G/warzone2100/music" '**/*.opus'
take widelands-data "$G/widelands/data/music" '*.ogg'
take xmoto-data "$G/xmoto/Textures/Musics" '*.ogg'
wait
# ---- manifest (durations of the converted files; a track that came out shorter than MIN_S is dropped)
printf 'path\tpackage\tduration_s\tlicence\tsha256\tsource\n' >"$MANIFEST.part"
for row in "${ROWS[@]}"; do
  IFS=$'\t' read -r path pkg h source <<<"$row"
  [[ -e "$D/$path" ]] || { echo "not converted: $source" >&2; continue; }
  od=$(dur "$D/$path")
  if ! awk -v d="$od" -v m="$MIN_S" 'BEGIN{exit !(d>=m)}'; then rm -f "$D/$path"; short=$((short+1)); continue; fi
  printf '%s\t%s\t%.3f\t%s\t%s\t%s\n' "$path" "$pkg" "$od" "${LIC[$pkg]}" "$h" "$source" >>"$MANIFEST.part"
  n=$((n+1))
done
mv "$MANIFEST.part" "$MANIFEST"

mins=$(awk -F'\t' 'NR>1{s+=$3} END{printf "%.1f", s/60}' "$MANIFEST")
echo "music_large: $n tracks, $mins min in $D ($dup duplicate files, $dropped tracks sharing audio and $short tracks under ${MIN_S} s skipped)"
awk -F'\t' 'NR>1{c[$2]++; s[$2]+=$3} END{for(p in c) printf "  %-28s %4d tracks %7.1f min\n", p, c[p], s[p]/60}' "$MANIFEST" | sort
