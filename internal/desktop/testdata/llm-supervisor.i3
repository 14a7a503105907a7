# anklume trust colours for infrastructure llm-supervisor (anklume desktop i3).
# Windows are matched on their class, "anklume.<domain>" or
# "anklume.<domain>.<machine>", set by the host-side program that opens them,
# never on their title. Each gets a [domain] tag in its trust colour.

# anklume: admin (blue)
#   launch anklume-instance: xterm -class anklume.anklume.anklume-instance -e anklume shell anklume-instance
for_window [class="^anklume\.anklume(\..+)?$"] border normal 3, title_format "<span background='#3333ff' foreground='#ffffff'> [anklume] </span> %title"

# ai-tools: semi-trusted (yellow)
#   launch llm-main: xterm -class anklume.ai-tools.llm-main -e anklume shell llm-main
#   launch llm-supervisor: xterm -class anklume.ai-tools.llm-supervisor -e anklume shell llm-supervisor
#   launch llm-ui: xterm -class anklume.ai-tools.llm-ui -e anklume shell llm-ui
for_window [class="^anklume\.ai-tools(\..+)?$"] border normal 3, title_format "<span background='#cccc33' foreground='#000000'> [ai-tools] </span> %title"
