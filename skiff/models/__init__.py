"""Object models shared by the CLI, the controller and the agent."""
