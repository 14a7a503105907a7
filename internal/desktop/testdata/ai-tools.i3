# anklume trust colours for infrastructure ai-tools (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch anklume-instance: xterm -class anklume.anklume.anklume-instance -e anklume shell anklume-instance
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# ai-tools: semi-trusted (yellow)
#   launch ai-coder: xterm -class anklume.ai-tools.ai-coder -e anklume shell ai-coder
#   launch ai-lobechat: xterm -class anklume.ai-tools.ai-lobechat -e anklume shell ai-lobechat
#   launch ai-openclaw: xterm -class anklume.ai-tools.ai-openclaw -e anklume shell ai-openclaw
#   launch ai-opencode: xterm -class anklume.ai-tools.ai-opencode -e anklume shell ai-opencode
#   launch ai-openwebui: xterm -class anklume.ai-tools.ai-openwebui -e anklume shell ai-openwebui
#   launch gpu-server: xterm -class anklume.ai-tools.gpu-server -e anklume shell gpu-server
for_window [class="^anklume\.ai-tools(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [ai-tools] </span> %title"
