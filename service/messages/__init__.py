"""受電報告: messages operators take for clients, and their delivery."""
