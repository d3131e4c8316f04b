"""The protocol every jaxgd transformation follows, and the helpers it rests on."""
