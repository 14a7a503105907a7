# anklume trust palette for tmux, infrastructure firewall-vm (anklume desktop tmux).
# The console uses the same colours: @anklume-tmux-* for window tabs,
# @anklume-border-* for pane borders, @anklume-bg-* as terminal backgrounds.
set -g @anklume-tmux-admin "colour17"
set -g @anklume-border-admin "#3333ff"
set -g @anklume-bg-admin "#0a0a2a"
set -g @anklume-tmux-trusted "colour22"
set -g @anklume-border-trusted "#33cc33"
set -g @anklume-bg-trusted "#0a1a0a"
set -g @anklume-tmux-semi-trusted "colour58"
set -g @anklume-border-semi-trusted "#cccc33"
set -g @anklume-bg-semi-trusted "#1a1a0a"
set -g @anklume-tmux-untrusted "colour52"
set -g @anklume-border-untrusted "#cc3333"
set -g @anklume-bg-untrusted "#1a0a0a"
set -g @anklume-tmux-disposable "colour53"
set -g @anklume-border-disposable "#cc33cc"
set -g @anklume-bg-disposable "#1a0a1a"
# Trust level of each domain; e.g. a background for a pane of domain D:
#   tmux select-pane -P "bg=$(tmux show -gv @anklume-bg-$(tmux show -gv @anklume-domain-D))"
set -g @anklume-domain-anklume "admin"
set -g @anklume-domain-perso "trusted"
set -g @anklume-domain-pro "trusted"
set -g @anklume-domain-browsing "untrusted"
