"""Model exporters: IR graph -> file."""
